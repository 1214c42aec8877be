"""The engine side of Herd: vLLM replicas hosted as Ray Serve deployments."""
