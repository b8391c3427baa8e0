"""Models of the product: requests, results and events."""
