"""Generated documentation of a model version: ``lockstep docs``.

:func:`~lockstep.docgen.facts.gather` collects what there is to say (from
the registry, the store and the loaded model), :mod:`~lockstep.docgen.render`
writes it as Markdown and as one self-contained HTML page.
"""
