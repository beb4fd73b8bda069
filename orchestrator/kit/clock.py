from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def isoformat_z(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second, as the contract's examples show."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
