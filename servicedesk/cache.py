"""Django's Redis cache, made safe to share a Redis database with the Celery broker."""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache


class RedisCache(DjangoRedisCache):
    """clear() deletes only this cache's keys (its KEY_PREFIX), never the whole database.

    Django's clear() is FLUSHDB: on the broker's database it would drop Celery's queues and bindings.
    """

    def clear(self):
        client = self._cache.get_client(write=True)
        pattern = f"{self.key_prefix}:*"  # Django's keys are "<prefix>:<version>:<key>"
        batch = []
        for key in client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
        return True
