import logging

logger = logging.getLogger("livekit.agents")
