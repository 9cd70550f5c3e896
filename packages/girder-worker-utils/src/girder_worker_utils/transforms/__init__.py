"""The transforms plugins and Girder plugins use, at the original's import paths.

:mod:`.common` has :class:`~.common.TemporaryDirectory`; :mod:`.girder_io` the
transforms that read from and write to Girder; :mod:`.contrib.girder_io`
:class:`~.contrib.girder_io.GirderFileIdAllowDirect`.
"""
