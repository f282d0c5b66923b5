"""Operations: Prometheus metrics (/metrics), the system page (/admin/system) and its history."""
