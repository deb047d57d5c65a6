"""The operator console: a Flask app of its own (`payhooks console`), never on the webhook port.

``console.app.create_app(settings)`` is the only way in; nothing connects on
import, and this package imports none of its children (so `payhooks --help`
stays fast). One blueprint per area, each with its templates under
``templates/<area>/``, all thin over :mod:`models.queries`, the layer the
CLI reads through too.
"""
