import datetime
import io
import json
import unittest

from runbook_plugin import hclog


class LoggerTest(unittest.TestCase):
    def test_line_format_the_host_parses(self):
        buf = io.StringIO()
        log = hclog.Logger("pyhello", stream=buf, level="info").with_fields(action="greet")
        log.debug("hidden")
        log.info("greeted", name="ops", path=object())
        lines = buf.getvalue().splitlines()
        self.assertEqual(len(lines), 1)
        e = json.loads(lines[0])
        self.assertEqual(e["@level"], "info")
        self.assertEqual(e["@message"], "greeted")
        self.assertEqual(e["@module"], "pyhello")
        self.assertEqual(e["action"], "greet")
        self.assertEqual(e["name"], "ops")
        self.assertIsInstance(e["path"], str)
        # go-plugin parses @timestamp with 2006-01-02T15:04:05.000000Z07:00.
        self.assertRegex(e["@timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}([+-]\d\d:\d\d|Z)$")

    def test_timestamp_keeps_microseconds_when_zero(self):
        t = datetime.datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=datetime.timezone.utc)
        self.assertEqual(hclog.timestamp(t), "2026-01-02T03:04:05.000000+00:00")

    def test_level_from_env(self):
        import os
        old = os.environ.get("RUNBOOK_PLUGIN_LOG_LEVEL")
        try:
            os.environ["RUNBOOK_PLUGIN_LOG_LEVEL"] = "WARNING"
            self.assertEqual(hclog.level_from_env(), "warn")
            os.environ["RUNBOOK_PLUGIN_LOG_LEVEL"] = "chatty"
            self.assertEqual(hclog.level_from_env(), "info")
        finally:
            if old is None:
                os.environ.pop("RUNBOOK_PLUGIN_LOG_LEVEL", None)
            else:
                os.environ["RUNBOOK_PLUGIN_LOG_LEVEL"] = old


if __name__ == "__main__":
    unittest.main()
