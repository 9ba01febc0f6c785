"""Operations: metrics and reading back the span store."""
