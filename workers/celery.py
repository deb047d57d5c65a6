"""What `celery -A workers worker` finds: the app built from the environment's settings."""
from models.settings import load_settings
from workers.celery_app import make_celery

app = make_celery(load_settings())
