"""Smoke test of the tools, run on the host: python3 -m unittest"""
import unittest

import app  # noqa: F401  registers the tools
import ward_plugin


class AppTest(unittest.TestCase):
    def test_lists_greet(self):
        tools = {t["name"]: t for t in ward_plugin.list_tools()}
        self.assertIn("greet", tools)
        self.assertEqual(tools["greet"]["inputSchema"]["required"], ["name"])

    def test_greets_by_name(self):
        result = ward_plugin.call_tool("greet", '{"name": "Ada"}')
        self.assertFalse(result.is_error)
        self.assertIn("Ada", result.content[0].value)


if __name__ == "__main__":
    unittest.main()
