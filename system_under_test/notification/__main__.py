from system_under_test.config import settings
from system_under_test.logs import setup_logging
from system_under_test.notification.app import create_app
from system_under_test.serving import serve

cfg = settings()
setup_logging("notification-service", cfg.log_level)
serve(create_app(cfg), cfg)
