"""Operations: Prometheus metrics, structured logs and their request ids, for the IdP."""
