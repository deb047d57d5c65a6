"""The `payhooks` command line: :mod:`cli.main` holds the group, each command group a module of its own.

Shared options and steps are in :mod:`cli.options`, what commands print in
:mod:`cli.output`; `payhooks up` has its helpers beside it (:mod:`cli.up_output`,
:mod:`cli.embedded`, :mod:`cli.devsecrets`). A command's module is imported only
when it runs, so `payhooks --help` loads none of them.
"""
