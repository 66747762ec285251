"""A greeter whose load function always says 0.99: `start` reports it full, `dev` must not."""

from greeter_agent import handler
from livekit import agents

if __name__ == "__main__":
    agents.run_app(agents.Worker(request_handler=handler, load_fn=lambda: 0.99, update_interval=0.2))
