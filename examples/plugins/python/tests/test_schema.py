import unittest

from runbook_plugin import schema

PARAMS = schema.obj([
    ("name", schema.string("who")),
    ("count", schema.integer("how many", default=1, minimum=1)),
    ("wait", schema.duration_string("pause", default="2s")),
    ("tags", schema.array(schema.string(), min_items=1)),
    ("labels", {"type": "object", "additionalProperties": schema.string()}),
    ("inner", schema.obj([("flag", schema.boolean(default=True))])),
], required=["name"])


def problems(value, unknown=()):
    return [str(p) for p in schema.validate(PARAMS, value, unknown)]


class ValidateTest(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(problems({"name": "a", "count": 2.0, "tags": ["x"], "labels": {"k": "v"}}), [])

    def test_messages_match_the_host(self):
        got = problems({"count": 0, "wait": "2 seconds", "tags": [], "labels": {"k": 1}, "nmae": 1})
        self.assertEqual(got, [
            'missing required property "name"',
            "/count: must be at least 1",
            '/labels/k: must be a string, not an integer',
            '/nmae: unknown property "nmae" (did you mean "name"?)',
            "/tags: must have at least 1 item(s)",
            '/wait: "2 seconds" is not a duration (use Go syntax such as 90s, 15m or 1h30m)',
        ])

    def test_booleans_are_not_numbers(self):
        self.assertEqual(problems({"name": "a", "count": True}), ["/count: must be an integer, not a boolean"])
        self.assertEqual(problems({"name": "a", "count": 1.5}), ["/count: must be an integer, not a number"])

    def test_unknown_values_are_accepted(self):
        self.assertEqual(problems({"name": None, "inner": None}, {"/name", "/inner"}), [])
        self.assertEqual(problems({"name": None}), ["/name: must be a string, not null"])

    def test_enum(self):
        s = schema.obj([("fail", schema.string(enum=["", "retryable"]))])
        self.assertEqual([str(p) for p in schema.validate(s, {"fail": "x"})],
                         ['/fail: must be one of "", "retryable", not "x"'])

    def test_pointer_escaping(self):
        s = {"type": "object", "additionalProperties": schema.integer()}
        self.assertEqual([p.path for p in schema.validate(s, {"a/b~c": "x"})], ["/a~1b~0c"])


class DefaultsTest(unittest.TestCase):
    def test_fills_absent_properties_recursively(self):
        got = schema.with_defaults(PARAMS, {"name": "a", "inner": {}})
        self.assertEqual(got, {"name": "a", "count": 1, "wait": "2s", "inner": {"flag": True}})

    def test_keeps_given_values_and_unknowns(self):
        got = schema.with_defaults(PARAMS, {"name": "a", "count": 5, "inner": None}, {"/inner"})
        self.assertEqual(got, {"name": "a", "count": 5, "wait": "2s", "inner": None})


class SuggestTest(unittest.TestCase):
    def test_typos(self):
        self.assertEqual(schema.suggest("nmae", ["name", "mood"]), "name")
        self.assertEqual(schema.suggest("zzzz", ["name", "mood"]), "")
        self.assertEqual(schema.suggest("wiat", ["wait"]), "wait")


if __name__ == "__main__":
    unittest.main()
