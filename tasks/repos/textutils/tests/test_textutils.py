import unittest

from textutils import capitalize_words, word_count


class TextutilsTest(unittest.TestCase):
    def test_word_count(self):
        self.assertEqual(word_count("one two  three"), 3)

    def test_capitalize_words(self):
        self.assertEqual(capitalize_words("hello big world"), "Hello Big World")


if __name__ == "__main__":
    unittest.main()
