"""Progress bars that leave plain text behind.

In a notebook, ``tqdm.auto`` draws an ipywidgets bar. Once the bar is closed its widget is gone, so a saved or
reloaded notebook shows "Error displaying widget: model not found" where the bar was. :func:`tqdm` here draws the
same widget while the work runs and, on close, replaces it in place by text: the final bar line when the bar is
kept (``leave=True``, or stopped early), nothing when it is not. Outside a notebook it is plain ``tqdm.auto``.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _text_when_closed_class():
    from tqdm.auto import tqdm as auto
    from tqdm.notebook import tqdm as notebook

    if not issubclass(auto, notebook):  # not in a Jupyter kernel with ipywidgets: a text bar already
        return auto

    class TextWhenClosed(auto):
        """tqdm's notebook bar, shown under a display id so that closing it can replace it by text."""

        def __init__(self, *args, **kwargs):
            show = kwargs.pop("display", True)
            super().__init__(*args, display=False, **kwargs)
            self._handle = None
            if show and not self.disable:
                from IPython.display import display

                # the widget's mime bundle, not the widget: ipywidgets 7 (Colab) displays a widget object through
                # _ipython_display_, which drops the display id, so close() could not replace it
                view = {"version_major": 2, "version_minor": 0, "model_id": self.container.model_id}
                self._handle = display({"text/plain": repr(self.container),
                                        "application/vnd.jupyter.widget-view+json": view}, raw=True, display_id=True)
                self.displayed = True

        def close(self):
            if self.disable or self._handle is None:
                return super().close()
            stopped_early = bool(self.total and self.n < self.total)
            text = self.format_meter(**{**self.format_dict, "ncols": 80}) if self.leave or stopped_early else ""
            handle, self._handle = self._handle, None
            super().close()
            handle.update({"text/plain": text}, raw=True)

    return TextWhenClosed


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm(*args, **kwargs)``, whose notebook widget becomes plain text when the bar closes."""
    return _text_when_closed_class()(*args, **kwargs)
