"""Models of provisioning: the request document, the workflow's state and each task's input."""
