"""Celery configuration for certstream-scout (loaded by scout.celery_app via `config_from_object`).

Every value derives from scout.config (environment / .env), so there is one place to configure.
"""
from scout.config import get_settings
from scout.queues import task_queues, task_routes, transport_options

_s = get_settings()

# Empty BROKER_URL: the embedded in-process broker of `scout run`.
broker_url = _s.broker_url or "memory://"
broker_connection_retry_on_startup = True
broker_connection_max_retries = None           # keep trying while Redis restarts
broker_transport_options = transport_options(_s)
broker_heartbeat = 30

# Workers publish the next step of a chain when a task ends: if the broker is away (a Redis restart),
# keep trying for ~2.5 minutes instead of failing the task. The producer publishes with a short policy
# of its own (scout.producer.sinks) and keeps batches in its own bounded buffer meanwhile.
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 60, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 3}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_backend = None                          # documents are the results; nothing waits on AsyncResult
task_ignore_result = True
result_expires = 24 * 3600                      # only matters if a result backend is ever configured

task_queues = task_queues(_s)
task_routes = task_routes()
task_default_queue = "dns"
task_create_missing_queues = True

# At-least-once: a task is acknowledged after it ran; a worker killed mid-task gives it back.
task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure = True
task_acks_on_timeout = True
worker_prefetch_multiplier = 1                 # rate-limited WHOIS tasks must not hoard messages
task_time_limit = 900
task_soft_time_limit = 600

worker_send_task_events = True                 # for Flower
task_send_sent_event = True
event_queue_expires = 60
event_queue_ttl = 5
worker_hijack_root_logger = False
worker_cancel_long_running_tasks_on_connection_loss = False
timezone = "UTC"
enable_utc = True
