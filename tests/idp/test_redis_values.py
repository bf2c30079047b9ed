"""The IdP keeps no pickle in Redis: its cache is refused if it pickles, RQ jobs are JSON (issue 8)."""

from __future__ import annotations

import json

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from idp_server import settings as idp_settings
from provider import backchannel
from provider.checks import check_no_pickle_in_redis


@pytest.mark.parametrize("options", [{}, {"SERIALIZER": "django_redis.serializers.pickle.PickleSerializer"}])
def test_a_redis_cache_that_pickles_is_refused_naming_the_setting(settings, options):
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://x", "OPTIONS": options}
    }
    [error] = check_no_pickle_in_redis(None)
    assert error.id == "provider.E002"
    assert error.msg.startswith('CACHES["default"]["OPTIONS"]["SERIALIZER"] is pickle')
    assert "django_redis.serializers.json.JSONSerializer" in error.hint


def test_the_idps_own_cache_settings_are_accepted(settings):
    settings.CACHES = idp_settings.CACHES  # what the IdP runs with (the unit tests use memory)
    assert check_no_pickle_in_redis(None) == []


def test_back_channel_logout_retries_are_queued_as_json():
    queue = backchannel.queue()
    assert queue.serializer is JSONSerializer
    job = Job.create(backchannel.deliver, args=(7, "the-sid"), connection=queue.connection, serializer=queue.serializer)
    assert json.loads(job.data)[2] == [7, "the-sid"]  # (function, instance, args, kwargs)
