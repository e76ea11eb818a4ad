import unittest

from runbook_plugin import parse_retry_after, retryable


class RetryAfterTest(unittest.TestCase):
    def test_seconds(self):
        self.assertEqual(parse_retry_after("120"), 120.0)
        self.assertEqual(parse_retry_after(" 7 "), 7.0)

    def test_http_date(self):
        # Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 in Unix time.
        self.assertEqual(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412450), 30.0)
        self.assertEqual(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500), 0.0)

    def test_unreadable_or_missing(self):
        for v in (None, "", "soon", "-3"):
            self.assertIsNone(parse_retry_after(v), v)

    def test_capped_at_a_day(self):
        self.assertEqual(parse_retry_after("999999999"), 86400.0)

    def test_error_carries_it(self):
        e = retryable("Throttled", "slow down", retry_after=parse_retry_after("3"))
        self.assertTrue(e.retryable)
        self.assertEqual(e.retry_after, 3.0)
        self.assertEqual(retryable("X", "y").retry_after, 0.0)


if __name__ == "__main__":
    unittest.main()
