"""Interactive ipywidgets for the workbook's notebooks, one section per notebook.

Every widget is built by a function, changes no global state on import, and has an ``update``
method that the notebook also calls once with defaults, so a headless run shows a result too.
"""

from __future__ import annotations

# --- 05 ---
# Notebook 05 (regularisation): sliders for the L2 strength lambda and the dropout probability p that
# retrain the small MLP head on cached embeddings and redraw its learning curves.


class RegularizationExplorer:
    """Sliders for ``l2`` (lambda, log scale) and dropout ``p``; each change retrains and redraws.

    ``explorer.widget`` is the ipywidgets box to ``display``; ``explorer.update(l2=None, p=None)``
    retrains with the given (or current slider) values, redraws into the output area, and returns
    the run's final metrics (a dict), so it can also be called from code without a browser.
    """

    def __init__(self, X_train, y_train, X_val, y_val, *, l2: float = 0.0, p: float = 0.0,
                 l2_exponents: tuple[float, float] = (-4.0, 0.0), seed: int = 0, **train_kwargs) -> None:
        import ipywidgets as w

        self.data = (X_train, y_train, X_val, y_val)
        self.train_kwargs = {**train_kwargs, "seed": seed}
        lo, hi = l2_exponents
        self.l2_slider = w.FloatLogSlider(value=max(l2, 10**lo), base=10, min=lo, max=hi, step=0.25,
                                          description="λ (L2)", continuous_update=False, readout_format=".1e")
        self.l2_on = w.Checkbox(value=l2 > 0, description="use L2", indent=False)
        self.l2_slider.disabled = not self.l2_on.value  # the slider only matters with L2 ticked
        self.l2_on.observe(lambda change: setattr(self.l2_slider, "disabled", not change["new"]), names="value")
        self.p_slider = w.FloatSlider(value=p, min=0.0, max=0.9, step=0.05, description="dropout p",
                                      continuous_update=False, readout_format=".2f")
        self.status = w.HTML()
        self.out = w.Output()
        for control in (self.l2_slider, self.l2_on, self.p_slider):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.l2_on, self.l2_slider, self.p_slider]), self.status, self.out])
        self.last = self.last_base = None
        self._busy = False

    def update(self, l2: float | None = None, p: float | None = None) -> dict:
        """Retrain with ``l2`` and ``p`` (default: the sliders), redraw, return the final metrics."""
        import matplotlib.pyplot as plt

        from .plots_regularization import plot_overfitting_curves
        from .regularization import train_mlp

        if self._busy:
            return {}
        self._busy = True
        try:  # move the sliders to the requested values without triggering a second retrain
            if l2 is not None:
                self.l2_on.value = l2 > 0
                if l2 > 0:
                    self.l2_slider.value = l2
            if p is not None:
                self.p_slider.value = p
        finally:
            self._busy = False
        lam = self.l2_slider.value if self.l2_on.value else 0.0
        drop = self.p_slider.value
        res = train_mlp(*self.data, l2=lam, p=drop, **self.train_kwargs)
        base = self.last_base or train_mlp(*self.data, **{**self.train_kwargs, "l2": 0.0, "p": 0.0})
        self.last, self.last_base = res, base
        f, f0 = res.final(), base.final()
        self.status.value = (f"<b>λ = {lam:.2g}, p = {drop:.2f}</b>: validation accuracy {f['val_acc']:.3f} "
                             f"(no regularisation {f0['val_acc']:.3f}); train - validation gap {f['gap']:.3f} "
                             f"(no regularisation {f0['gap']:.3f}); trained in {res.seconds:.1f} s")
        # Write into the output area directly (no `with self.out:` capture): headless runners such as
        # nbclient otherwise wait for the capture to end until their cell timeout.
        axes = plot_overfitting_curves({"no regularisation": base, f"λ={lam:.2g}, p={drop:.2f}": res})
        self.out.outputs = ()
        self.out.append_display_data(axes[0].figure)
        plt.close(axes[0].figure)
        return {"l2": lam, "p": drop, **f, "seconds": res.seconds}


def regularization_explorer(X_train, y_train, X_val, y_val, **kwargs) -> RegularizationExplorer:
    """Build a :class:`RegularizationExplorer` (display ``.widget``, call ``.update()`` once)."""
    return RegularizationExplorer(X_train, y_train, X_val, y_val, **kwargs)


# --- 04 ---
# Notebook 04 (fairness-constrained training): a λ slider and a constraint selector that retrain the
# penalised head on cached embeddings and redraw the per-group table.


class FairnessExplorer:
    """λ slider (penalty strength) and a DP/EO selector; each change retrains the head and redraws who pays.

    ``explorer.widget`` is the box to ``display``; ``explorer.update(lam=None, constraint=None)`` retrains
    with the given (or current) values, redraws the per-group table (selection rate, TPR, FPR, accuracy for
    the unconstrained and the penalised head) and returns ``{"lam", "constraint", "accuracy", "dp", "eo",
    "seconds"}``, so it also works from code in a headless run.
    """

    def __init__(self, data, *, lam: float = 1.0, constraint: str = "dp", lam_max: float = 8.0, seed: int = 0,
                 **train_kwargs) -> None:
        import ipywidgets as w

        self.data, self.seed, self.train_kwargs = data, seed, train_kwargs
        self.lam_slider = w.FloatSlider(value=lam, min=0.0, max=lam_max, step=0.25, description="λ",
                                        continuous_update=False, readout_format=".2f")
        self.constraint = w.Dropdown(options=[("demographic parity", "dp"), ("equalized odds", "eo")],
                                     value=constraint, description="gap")
        self.status = w.HTML()
        self.out = w.Output()
        self.widget = w.VBox([w.HBox([self.lam_slider, self.constraint]), self.status, self.out])
        self.base = None
        self.last: dict | None = None
        self._busy = False
        self.lam_slider.observe(lambda _: self._on_change(), names="value")
        self.constraint.observe(lambda _: self._on_change(), names="value")

    def _on_change(self) -> None:
        if not self._busy:
            self.update()

    def update(self, lam: float | None = None, constraint: str | None = None) -> dict:
        import pandas as pd
        from IPython.display import clear_output, display

        from .fairness.constrained import evaluate, per_group_table, train_fair_head

        self._busy = True
        try:
            if lam is not None:
                self.lam_slider.value = lam
            if constraint is not None:
                self.constraint.value = constraint
        finally:
            self._busy = False
        d, lam, c = self.data, float(self.lam_slider.value), self.constraint.value
        if self.base is None:
            self.base = train_fair_head(d.X_train, d.y_train, d.g_train, method="unconstrained", seed=self.seed,
                                        **self.train_kwargs).predict(d.X_test)
        res = train_fair_head(d.X_train, d.y_train, d.g_train, method="penalty", lam=lam, constraint=c,
                              seed=self.seed, **self.train_kwargs)
        pred = res.predict(d.X_test)
        m, m0 = evaluate(d.y_test, pred, d.g_test), evaluate(d.y_test, self.base, d.g_test)
        names = d.group_names or None
        cols = ["count", "selection_rate", "tpr", "fpr", "accuracy"]
        table = pd.concat({"unconstrained": per_group_table(d.y_test, self.base, d.g_test, names)[cols],
                           f"penalty λ={lam:g} ({c.upper()})": per_group_table(d.y_test, pred, d.g_test, names)[cols]})
        self.status.value = (f"<b>λ = {lam:g}, {c.upper()}</b>: accuracy {m['accuracy']:.3f} "
                             f"(unconstrained {m0['accuracy']:.3f}); DP difference {m['dp']:.3f} ({m0['dp']:.3f}); "
                             f"EO difference {m['eo']:.3f} ({m0['eo']:.3f}); retrained in {res.seconds:.1f} s")
        with self.out:
            clear_output(wait=True)
            display(table.round(3))
        self.last = {"lam": lam, "constraint": c, **m, "seconds": res.seconds}
        return self.last


def fairness_explorer(data, **kwargs) -> FairnessExplorer:
    """Build a :class:`FairnessExplorer` for a :class:`helpers.fairness.constrained.FairData` (display
    ``.widget``, call ``.update()`` once so a headless run shows a table too)."""
    return FairnessExplorer(data, **kwargs)
