import os
import tempfile
import unittest

from notes.config import load_config
from notes.storage import NoteStore


class StoreTest(unittest.TestCase):
    def test_add_and_get(self):
        with tempfile.TemporaryDirectory() as d:
            store = NoteStore(os.path.join(d, "n.json"))
            self.assertEqual(store.add("hello"), 1)
            self.assertEqual(store.add("world"), 2)
            self.assertEqual(store.get(2), "world")


class ConfigTest(unittest.TestCase):
    def test_defaults_and_env(self):
        self.assertEqual(load_config({}).port, 8080)
        self.assertEqual(load_config({"NOTES_PORT": "9000"}).port, 9000)


if __name__ == "__main__":
    unittest.main()
