"""Talking to Pixelfed: HTTP manners (throttle, retries, SSRF guard), the API client and its typed models, OAuth."""
