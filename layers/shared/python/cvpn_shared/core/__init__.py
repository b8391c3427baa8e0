"""The kernel every area uses: AWS clients and error codes, observability, field errors, item codecs,
the notifications topic, settings read from the environment. It imports no area."""
