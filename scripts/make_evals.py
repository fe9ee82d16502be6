#!/usr/bin/env python3
"""Generate and validate the quick-eval question sets under ``evals/``.

Writes, for each set (math, code, analysis), ``evals/<set>.yaml`` (metadata,
system prompt, few-shot examples) and ``evals/<set>.jsonl`` (one item a line),
then validates them:

* math: templates draw numbers from a per-item seeded ``random.Random`` and the
  expected answer is computed with exact ``Fraction`` arithmetic; draws whose
  answer is not an integer or a number with at most two decimals are redrawn.
* code: every reference solution is exec'd with its asserts in a subprocess
  (all must pass), and the asserts must fail against a do-nothing stub.
* analysis: "what does this print" snippets are executed (twice, with different
  hash seeds) and must print exactly the expected value; SQL items are run
  against sqlite3.

Stdlib only and deterministic: running it twice writes byte-identical files.

    python scripts/make_evals.py            # write + validate
    python scripts/make_evals.py --check    # validate existing files, write nothing
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from fractions import Fraction as F
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVALS = ROOT / "evals"
SEED = 20240611
MAX_PROMPT = 600
DIFFS = ("easy", "medium", "hard")


class EvalError(Exception):
    pass


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def num(x: F | int | float) -> int | float:
    """Exact Fraction -> int, or float with at most 2 decimals; else raise."""
    x = F(x)
    if x.denominator == 1:
        return int(x)
    if (x * 100).denominator == 1:
        return float(x)
    raise ValueError(f"not a clean number: {x}")


def clean(x: F) -> bool:
    try:
        num(x)
        return True
    except ValueError:
        return False


def fmt(x: F | int | float) -> str:
    """Human formatting of an exact number: 12, 12.5, 12.25."""
    v = num(x)
    if isinstance(v, int):
        return str(v)
    return f"{v:.2f}".rstrip("0")


def money(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


def dollars(x: F) -> str:
    """Money from an exact dollar amount (must be whole cents)."""
    c = F(x) * 100
    assert c.denominator == 1, x
    return money(int(c))


# ---------------------------------------------------------------------------
# math: templates
# ---------------------------------------------------------------------------
# Each template: rng -> (prompt, exact answer as Fraction). A template may raise
# Retry to ask for a fresh draw.


class Retry(Exception):
    pass


ITEMS_SOLD = ["notebook", "pen", "sandwich", "bus ticket", "muffin", "marker", "bottle of juice"]
NAMES = ["Mia", "Liam", "Ava", "Noah", "Zoe", "Omar", "Lena", "Ravi", "Sofia", "Ken", "Ines", "Tom"]


def t_unit_total(r: random.Random):
    item = r.choice(ITEMS_SOLD)
    p = r.randrange(105, 1000, 5)
    n = r.randint(3, 12)
    plural = "bottles of juice" if item == "bottle of juice" else item + "s"
    return (f"A {item} costs {money(p)}. How much do {n} {plural} cost, in dollars?",
            F(p * n, 100))


def t_change(r: random.Random):
    name = r.choice(NAMES)
    a, b, c = (r.randrange(150, 1500, 5) for _ in range(3))
    bill = 50 if a + b + c < 5000 else None
    if bill is None:
        raise Retry
    return (f"{name} buys a book for {money(a)}, a cap for {money(b)} and a snack for {money(c)}. "
            f"{name} pays with a $50 bill. How much change, in dollars, does {name} get?",
            F(5000 - a - b - c, 100))


def t_distance(r: random.Random):
    s = r.randrange(30, 95, 5)
    h = r.choice([F(3, 2), F(2), F(5, 2), F(3), F(4), F(1, 2)])
    return (f"A train travels at a constant speed of {s} km/h for {fmt(h)} hours. "
            "How many kilometers does it travel?", s * h)


def t_rect_area(r: random.Random):
    L, W = r.randint(4, 30), r.randint(3, 20)
    if L == W:
        raise Retry
    return (f"A rectangular garden is {L} m long and {W} m wide. What is its area in square meters?",
            F(L * W))


def t_age(r: random.Random):
    name = r.choice(NAMES)
    a, b, c = r.randint(5, 14), r.randint(2, 9), r.randint(3, 12)
    return (f"{name} is {a} years old. {name}'s sister is {b} years older. "
            f"How old will the sister be in {c} years?", F(a + b + c))


CONVERSIONS = [
    ("meters", "centimeters", 100),
    ("kilometers", "meters", 1000),
    ("hours", "minutes", 60),
    ("kilograms", "grams", 1000),
    ("minutes", "seconds", 60),
    ("liters", "milliliters", 1000),
]


def t_convert(r: random.Random):
    src, dst, k = r.choice(CONVERSIONS)
    x = F(r.randint(2, 40), 2) if r.random() < 0.5 else F(r.randint(2, 25))
    return f"How many {dst} are in {fmt(x)} {src}?", x * k


def t_share(r: random.Random):
    k, q = r.randint(3, 9), r.randint(4, 15)
    thing = r.choice(["stickers", "marbles", "cards", "cookies"])
    return (f"{k * q} {thing} are shared equally among {k} children. "
            f"How many {thing} does each child get?", F(q))


def t_discount(r: random.Random):
    item = r.choice(["jacket", "lamp", "bike helmet", "backpack", "pair of shoes"])
    P = r.randint(20, 200)
    d = r.choice([10, 15, 20, 25, 30, 40, 50])
    return (f"A {item} costs ${P}. It is on sale for {d}% off. What is the sale price, in dollars?",
            F(P * (100 - d), 100))


def t_mean(r: random.Random):
    xs = [r.randint(55, 100) for _ in range(5)]
    name = r.choice(NAMES)
    return (f"{name}'s five test scores are {', '.join(map(str, xs[:-1]))} and {xs[-1]}. "
            "What is the mean (average) score?", F(sum(xs), 5))


def t_machine(r: random.Random):
    rate = r.choice([12, 15, 20, 24, 25, 30, 40, 45, 50])
    h = r.choice([F(2), F(3), F(4), F(5), F(6), F(3, 2), F(5, 2)])
    n = rate * 60 * h
    if n.denominator != 1:
        raise Retry
    return (f"A machine fills {rate} bottles per minute. How many hours does it take to fill "
            f"{int(n)} bottles?", h)


def t_fence(r: random.Random):
    L, W = r.randint(8, 40), r.randint(5, 25)
    c = r.randrange(550, 2000, 25)
    return (f"A rectangular yard is {L} m by {W} m. Fencing costs {money(c)} per meter. "
            "How much, in dollars, does it cost to fence all four sides?",
            F(2 * (L + W) * c, 100))


def t_ratio(r: random.Random):
    a, b = r.randint(1, 7), r.randint(1, 7)
    if a == b or math.gcd(a, b) != 1:
        raise Retry
    k = r.randint(3, 12)
    return (f"The ratio of boys to girls in a club is {a}:{b}. The club has {(a + b) * k} members. "
            "How many girls are in the club?", F(b * k))


def t_pct_increase(r: random.Random):
    A = r.randint(8, 90) * 100
    p = r.choice([5, 10, 12, 15, 20, 25, 30, 40])
    B = F(A * (100 + p), 100)
    if B.denominator != 1:
        raise Retry
    return (f"A town's population grew from {A} to {int(B)}. By what percent did it increase?",
            F(p))


def t_circle(r: random.Random):
    d = r.randrange(4, 41, 2)
    return (f"Using pi = 3.14, what is the area, in square centimeters, of a circle with a "
            f"diameter of {d} cm?", F(314, 100) * F(d, 2) ** 2)


def t_unit_price(r: random.Random):
    p6 = r.randrange(90, 250, 5)
    p10 = p6 - r.randrange(5, 40, 5)
    return (f"A 6-pack of juice costs {money(6 * p6)} and a 10-pack of the same juice costs "
            f"{money(10 * p10)}. How much cheaper per bottle, in dollars, is the 10-pack?",
            F(p6 - p10, 100))


def t_avg_speed(r: random.Random):
    v = r.randint(12, 30)
    t = r.choice([20, 30, 40, 45, 50, 90, 100])
    d = F(v * t, 60)
    if (d * 10).denominator != 1:
        raise Retry
    name = r.choice(NAMES)
    return (f"{name} cycles {fmt(d)} km in {t} minutes at a steady pace. "
            f"What is {name}'s average speed in km/h?", F(v))


def t_discount_tax(r: random.Random):
    P = r.randint(20, 300)
    d = r.choice([10, 20, 25, 30, 40])
    t = r.choice([5, 6, 8, 10])
    ans = F(P) * F(100 - d, 100) * F(100 + t, 100)
    if not clean(ans):
        raise Retry
    return (f"A coat costs ${P}. It is discounted by {d}%, and then sales tax of {t}% is added "
            "to the discounted price. What is the final price, in dollars?", ans)


def t_needed_score(r: random.Random):
    n = r.randint(3, 6)
    a = r.randint(70, 88)
    b = a + r.randint(1, 3)
    need = b * (n + 1) - a * n
    if need > 100:
        raise Retry
    name = r.choice(NAMES)
    return (f"After {n} tests, {name}'s average score is {a}. What score does {name} need on the "
            f"next test to raise the average of all {n + 1} tests to exactly {b}?", F(need))


def t_meeting(r: random.Random):
    v1, v2 = r.randint(10, 30), r.randint(10, 30)
    t = r.randrange(15, 181, 5)
    d = F((v1 + v2) * t, 60)
    if (d * 10).denominator != 1 or v1 == v2:
        raise Retry
    return (f"Two cyclists start {fmt(d)} km apart and ride toward each other, one at {v1} km/h "
            f"and the other at {v2} km/h. After how many minutes do they meet?", F(t))


def t_ages(r: random.Random):
    s, k, n = r.randint(4, 15), r.randint(3, 6), r.randint(2, 24)
    if (k * s + n) % (s + n):
        raise Retry
    m = (k * s + n) // (s + n)
    if m < 2 or m == k:
        raise Retry
    return (f"A mother is {k} times as old as her son. In {n} years she will be {m} times as old "
            "as her son. How old is the son now?", F(s))


def t_pipes(r: random.Random):
    a, b = r.randint(2, 12), r.randint(2, 12)
    if a >= b:
        raise Retry
    minutes = F(60 * a * b, a + b)
    if minutes.denominator != 1:
        raise Retry
    return (f"Pipe A alone fills a tank in {a} hours, and pipe B alone fills it in {b} hours. "
            "Working together, how many minutes do they take to fill the tank?", minutes)


def t_compound(r: random.Random):
    P = r.randint(5, 80) * 100
    rate = r.choice([2, 3, 4, 5, 6, 8, 10])
    ans = F(P) * F(100 + rate, 100) ** 2
    if not clean(ans):
        raise Retry
    return (f"${P} is deposited at {rate}% annual interest, compounded once per year. "
            "No money is withdrawn. What is the balance, in dollars, after 2 years?", ans)


def t_tiles(r: random.Random):
    L, W = F(r.randint(6, 16), 2), F(r.randint(5, 12), 2)
    tiles = L * W * 4  # 50 cm x 50 cm tiles: 4 per square meter
    box = r.choice([8, 10, 12, 15, 20])
    price = r.randrange(1500, 4500, 50)
    boxes = math.ceil(tiles / box)
    if tiles % box == 0:
        raise Retry  # make the rounding-up step matter
    return (f"A room is {fmt(L)} m by {fmt(W)} m. It is covered with square tiles 50 cm on a side, "
            f"with no gaps or waste. Tiles come only in full boxes of {box}, costing "
            f"{money(price)} per box. What is the cost, in dollars, of the boxes needed?",
            F(boxes * price, 100))


def t_fuel(r: random.Random):
    use = r.choice([F(5), F(11, 2), F(6), F(13, 2), F(7), F(8), F(9)])
    d = r.randrange(150, 901, 50)
    price = r.randrange(140, 220, 5)
    ans = use * d / 100 * F(price, 100)
    if not clean(ans):
        raise Retry
    return (f"A car uses {fmt(use)} liters of fuel per 100 km. Fuel costs {money(price)} per liter. "
            f"What is the fuel cost, in dollars, of a {d} km trip?", ans)


def t_overtime(r: random.Random):
    w = F(r.randrange(1400, 3200, 50), 100)
    h = r.randint(42, 55)
    ans = 40 * w + F(3, 2) * w * (h - 40)
    if not clean(ans):
        raise Retry
    name = r.choice(NAMES)
    return (f"{name} earns {dollars(w)} per hour for the first 40 hours in a week and 1.5 times "
            f"that rate for every hour beyond 40. How much, in dollars, does {name} earn for "
            f"a {h}-hour week?", ans)


def t_profit(r: random.Random):
    n = r.randrange(20, 101, 10)
    cost = r.randint(6, 20)
    price = cost + r.randint(5, 15)
    sold = r.randrange(n // 2, n, 5)
    d = r.choice([20, 25, 40, 50])
    rest = n - sold
    ans = sold * price + rest * F(price * (100 - d), 100) - n * cost
    if not clean(ans) or ans <= 0:
        raise Retry
    return (f"A shop buys {n} shirts for ${cost} each. It sells {sold} of them at ${price} each "
            f"and the rest at {d}% off that price. What is the total profit, in dollars?", ans)


MATH_TEMPLATES = {
    "easy": [t_unit_total, t_change, t_distance, t_rect_area, t_age, t_convert, t_share],
    "medium": [t_discount, t_mean, t_machine, t_fence, t_ratio, t_pct_increase, t_circle,
               t_unit_price, t_avg_speed],
    "hard": [t_discount_tax, t_needed_score, t_meeting, t_ages, t_pipes, t_compound, t_tiles,
             t_fuel, t_overtime, t_profit],
}
MATH_PER_DIFF = 22

MATH_EXAMPLES = [
    {"prompt": "A box holds 12 eggs. How many eggs are in 7 full boxes?",
     "response": "Each box has 12 eggs, so 7 boxes hold 7 × 12 = 84 eggs.\nAnswer: 84"},
    {"prompt": "A phone costs $80. Its price rises by 15%. What is the new price, in dollars?",
     "response": "15% of $80 is 0.15 × 80 = $12, so the new price is 80 + 12 = $92.\nAnswer: 92"},
    {"prompt": "A runner jogs 4.5 km in 30 minutes, then walks 1.5 km in 20 minutes. "
               "What is the average speed for the whole trip in km/h?",
     "response": "Total distance is 4.5 + 1.5 = 6 km. Total time is 30 + 20 = 50 minutes = 5/6 h. "
                 "Speed = 6 ÷ (5/6) = 7.2 km/h.\nAnswer: 7.2"},
]


def make_math() -> list[dict]:
    items, seen = [], set()
    for diff in DIFFS:
        templates = MATH_TEMPLATES[diff]
        for i in range(MATH_PER_DIFF):
            tpl = templates[i % len(templates)]
            for attempt in range(1000):
                r = random.Random(f"{SEED}:math:{tpl.__name__}:{i}:{attempt}")
                try:
                    prompt, ans = tpl(r)
                except Retry:
                    continue
                if not clean(ans) or ans <= 0 or prompt in seen:
                    continue
                break
            else:
                raise EvalError(f"template {tpl.__name__} could not produce an item")
            seen.add(prompt)
            items.append({"prompt": prompt, "expected": num(ans), "difficulty": diff,
                          "_template": tpl.__name__})
    for n, it in enumerate(items, 1):
        it["id"] = f"math-{n:03d}"
    return items


# ---------------------------------------------------------------------------
# code: hand-written functions
# ---------------------------------------------------------------------------
# (difficulty, signature, description, reference solution, tests)

CODE: list[tuple[str, str, str, str, list[str]]] = [
    # ---------------- easy ----------------
    ("easy", "def is_palindrome(s: str) -> bool",
     "returns True if `s` reads the same forwards and backwards when case and all "
     "non-alphanumeric characters are ignored, else False. The empty string is a palindrome.",
     """
     def is_palindrome(s: str) -> bool:
         t = [c.lower() for c in s if c.isalnum()]
         return t == t[::-1]
     """,
     ["assert is_palindrome('A man, a plan, a canal: Panama') is True",
      "assert is_palindrome('hello') is False",
      "assert is_palindrome('') is True",
      "assert is_palindrome('No lemon, no melon') is True",
      "assert is_palindrome('ab') is False"]),
    ("easy", "def reverse_words(s: str) -> str",
     "returns the whitespace-separated words of `s` in reverse order, joined by single spaces "
     "(leading/trailing whitespace dropped).",
     """
     def reverse_words(s: str) -> str:
         return " ".join(reversed(s.split()))
     """,
     ["assert reverse_words('hello world') == 'world hello'",
      "assert reverse_words('  a  b   c ') == 'c b a'",
      "assert reverse_words('') == ''",
      "assert reverse_words('one') == 'one'"]),
    ("easy", "def count_vowels(s: str) -> int",
     "returns how many characters of `s` are vowels (a, e, i, o, u), case-insensitive. "
     "'y' is not a vowel.",
     """
     def count_vowels(s: str) -> int:
         return sum(1 for c in s.lower() if c in "aeiou")
     """,
     ["assert count_vowels('Hello World') == 3",
      "assert count_vowels('') == 0",
      "assert count_vowels('AEIOUaeiou') == 10",
      "assert count_vowels('rhythm') == 0"]),
    ("easy", "def fizzbuzz(n: int) -> list[str]",
     "returns a list for the numbers 1..n: 'FizzBuzz' for multiples of 15, 'Fizz' for multiples "
     "of 3, 'Buzz' for multiples of 5, otherwise the number as a string. n <= 0 gives [].",
     """
     def fizzbuzz(n: int) -> list[str]:
         out = []
         for i in range(1, n + 1):
             if i % 15 == 0:
                 out.append("FizzBuzz")
             elif i % 3 == 0:
                 out.append("Fizz")
             elif i % 5 == 0:
                 out.append("Buzz")
             else:
                 out.append(str(i))
         return out
     """,
     ["assert fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']",
      "assert fizzbuzz(15)[-1] == 'FizzBuzz'",
      "assert fizzbuzz(0) == []",
      "assert len(fizzbuzz(30)) == 30"]),
    ("easy", "def factorial(n: int) -> int",
     "returns n! for a non-negative integer n (0! is 1).",
     """
     def factorial(n: int) -> int:
         result = 1
         for i in range(2, n + 1):
             result *= i
         return result
     """,
     ["assert factorial(0) == 1", "assert factorial(1) == 1", "assert factorial(5) == 120",
      "assert factorial(10) == 3628800"]),
    ("easy", "def is_prime(n: int) -> bool",
     "returns True if the integer `n` is a prime number, else False (numbers below 2 are not prime).",
     """
     def is_prime(n: int) -> bool:
         if n < 2:
             return False
         i = 2
         while i * i <= n:
             if n % i == 0:
                 return False
             i += 1
         return True
     """,
     ["assert is_prime(2) is True", "assert is_prime(1) is False", "assert is_prime(-7) is False",
      "assert is_prime(97) is True", "assert is_prime(91) is False", "assert is_prime(0) is False"]),
    ("easy", "def sum_of_digits(n: int) -> int",
     "returns the sum of the decimal digits of `n`; for negative n use its absolute value.",
     """
     def sum_of_digits(n: int) -> int:
         return sum(int(d) for d in str(abs(n)))
     """,
     ["assert sum_of_digits(1234) == 10", "assert sum_of_digits(0) == 0",
      "assert sum_of_digits(-905) == 14", "assert sum_of_digits(7) == 7"]),
    ("easy", "def capitalize_words(s: str) -> str",
     "returns `s` (words separated by single spaces) with each word's first character uppercased "
     "and the rest of the word lowercased.",
     """
     def capitalize_words(s: str) -> str:
         return " ".join(w[:1].upper() + w[1:].lower() for w in s.split(" "))
     """,
     ["assert capitalize_words('hello world') == 'Hello World'",
      "assert capitalize_words('pYTHON is FUN') == 'Python Is Fun'",
      "assert capitalize_words('') == ''",
      "assert capitalize_words('a') == 'A'"]),
    ("easy", "def gcd(a: int, b: int) -> int",
     "returns the greatest common divisor of two non-negative integers without using the math "
     "module; gcd(0, 0) is 0.",
     """
     def gcd(a: int, b: int) -> int:
         while b:
             a, b = b, a % b
         return a
     """,
     ["assert gcd(12, 18) == 6", "assert gcd(17, 5) == 1", "assert gcd(0, 9) == 9",
      "assert gcd(0, 0) == 0", "assert gcd(100, 75) == 25"]),
    ("easy", "def remove_duplicates(xs: list) -> list",
     "returns a new list with duplicates removed, keeping the first occurrence of each element "
     "in its original order (elements are hashable).",
     """
     def remove_duplicates(xs: list) -> list:
         seen = set()
         out = []
         for x in xs:
             if x not in seen:
                 seen.add(x)
                 out.append(x)
         return out
     """,
     ["assert remove_duplicates([3, 1, 3, 2, 1]) == [3, 1, 2]",
      "assert remove_duplicates([]) == []",
      "assert remove_duplicates(['a', 'b', 'a']) == ['a', 'b']",
      "assert remove_duplicates([1, 2, 3]) == [1, 2, 3]"]),
    ("easy", "def chunk(xs: list, n: int) -> list[list]",
     "splits `xs` into consecutive sublists of length `n` (n >= 1); the last sublist may be "
     "shorter. An empty list gives [].",
     """
     def chunk(xs: list, n: int) -> list[list]:
         return [xs[i:i + n] for i in range(0, len(xs), n)]
     """,
     ["assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]",
      "assert chunk([], 3) == []",
      "assert chunk([1, 2, 3], 3) == [[1, 2, 3]]",
      "assert chunk([1, 2], 5) == [[1, 2]]",
      "assert chunk(['a', 'b', 'c'], 1) == [['a'], ['b'], ['c']]"]),
    ("easy", "def clamp(x: float, lo: float, hi: float) -> float",
     "returns `x` limited to the closed range [lo, hi] (lo <= hi).",
     """
     def clamp(x: float, lo: float, hi: float) -> float:
         return max(lo, min(x, hi))
     """,
     ["assert clamp(5, 0, 10) == 5", "assert clamp(-3, 0, 10) == 0", "assert clamp(42, 0, 10) == 10",
      "assert clamp(2.5, 2.5, 2.5) == 2.5"]),
    ("easy", "def is_anagram(a: str, b: str) -> bool",
     "returns True if `a` and `b` are anagrams of each other, ignoring case and spaces.",
     """
     def is_anagram(a: str, b: str) -> bool:
         norm = lambda s: sorted(s.replace(" ", "").lower())
         return norm(a) == norm(b)
     """,
     ["assert is_anagram('Listen', 'Silent') is True",
      "assert is_anagram('Dormitory', 'dirty room') is True",
      "assert is_anagram('abc', 'abd') is False",
      "assert is_anagram('aab', 'abb') is False",
      "assert is_anagram('', '') is True"]),
    ("easy", "def fibonacci(n: int) -> int",
     "returns the n-th Fibonacci number for n >= 0, where fibonacci(0) == 0 and fibonacci(1) == 1.",
     """
     def fibonacci(n: int) -> int:
         a, b = 0, 1
         for _ in range(n):
             a, b = b, a + b
         return a
     """,
     ["assert fibonacci(0) == 0", "assert fibonacci(1) == 1", "assert fibonacci(2) == 1",
      "assert fibonacci(10) == 55", "assert fibonacci(50) == 12586269025"]),
    ("easy", "def word_count(s: str) -> dict[str, int]",
     "returns a dict mapping each lowercased whitespace-separated word of `s` to how many times "
     "it occurs (no punctuation handling).",
     """
     def word_count(s: str) -> dict[str, int]:
         counts = {}
         for w in s.lower().split():
             counts[w] = counts.get(w, 0) + 1
         return counts
     """,
     ["assert word_count('a B a') == {'a': 2, 'b': 1}",
      "assert word_count('') == {}",
      "assert word_count('The the THE end') == {'the': 3, 'end': 1}"]),
    ("easy", "def average(xs: list[float]) -> float",
     "returns the arithmetic mean of `xs`, or 0.0 if the list is empty.",
     """
     def average(xs: list[float]) -> float:
         return sum(xs) / len(xs) if xs else 0.0
     """,
     ["assert average([1, 2, 3, 4]) == 2.5", "assert average([]) == 0.0",
      "assert average([5]) == 5", "assert average([-2, 2]) == 0"]),
    ("easy", "def is_leap_year(year: int) -> bool",
     "returns True if `year` is a leap year in the Gregorian calendar.",
     """
     def is_leap_year(year: int) -> bool:
         return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
     """,
     ["assert is_leap_year(2024) is True", "assert is_leap_year(1900) is False",
      "assert is_leap_year(2000) is True", "assert is_leap_year(2023) is False"]),
    ("easy", "def running_sum(xs: list[int]) -> list[int]",
     "returns the list of prefix sums of `xs` (element i is xs[0] + ... + xs[i]).",
     """
     def running_sum(xs: list[int]) -> list[int]:
         out, total = [], 0
         for x in xs:
             total += x
             out.append(total)
         return out
     """,
     ["assert running_sum([1, 2, 3, 4]) == [1, 3, 6, 10]", "assert running_sum([]) == []",
      "assert running_sum([5, -5, 5]) == [5, 0, 5]"]),
    ("easy", "def truncate(s: str, n: int) -> str",
     "returns `s` unchanged if len(s) <= n; otherwise returns its first n - 3 characters followed "
     "by '...' (so the result has length n). Assume n >= 3.",
     """
     def truncate(s: str, n: int) -> str:
         return s if len(s) <= n else s[:n - 3] + "..."
     """,
     ["assert truncate('hello', 10) == 'hello'", "assert truncate('hello world', 8) == 'hello...'",
      "assert truncate('abcdef', 6) == 'abcdef'", "assert truncate('abcdef', 3) == '...'"]),
    ("easy", "def snake_to_camel(s: str) -> str",
     "converts a snake_case identifier (lowercase words joined by single underscores) to "
     "lowerCamelCase, e.g. 'hello_big_world' -> 'helloBigWorld'.",
     """
     def snake_to_camel(s: str) -> str:
         first, *rest = s.split("_")
         return first + "".join(w.capitalize() for w in rest)
     """,
     ["assert snake_to_camel('hello_big_world') == 'helloBigWorld'",
      "assert snake_to_camel('word') == 'word'",
      "assert snake_to_camel('a_b') == 'aB'"]),
    ("easy", "def min_max(xs: list[int]) -> tuple[int, int]",
     "returns a tuple (smallest, largest) of a non-empty list without using min() or max().",
     """
     def min_max(xs: list[int]) -> tuple[int, int]:
         lo = hi = xs[0]
         for x in xs[1:]:
             if x < lo:
                 lo = x
             if x > hi:
                 hi = x
         return (lo, hi)
     """,
     ["assert min_max([3, 1, 4, 1, 5]) == (1, 5)", "assert min_max([7]) == (7, 7)",
      "assert min_max([-2, -9, 0]) == (-9, 0)"]),
    ("easy", "def count_char(s: str, ch: str) -> int",
     "returns how many times the single character `ch` occurs in `s` (case-sensitive) "
     "without using str.count.",
     """
     def count_char(s: str, ch: str) -> int:
         return sum(1 for c in s if c == ch)
     """,
     ["assert count_char('banana', 'a') == 3", "assert count_char('Banana', 'b') == 0",
      "assert count_char('', 'x') == 0", "assert count_char('xxx', 'x') == 3"]),
    # ---------------- medium ----------------
    ("medium", "def roman_to_int(s: str) -> int",
     "converts a valid Roman numeral (I, V, X, L, C, D, M with subtractive forms such as IV, "
     "IX, XL, XC, CD, CM) to an integer.",
     """
     def roman_to_int(s: str) -> int:
         vals = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
         total = 0
         for i, c in enumerate(s):
             v = vals[c]
             if i + 1 < len(s) and vals[s[i + 1]] > v:
                 total -= v
             else:
                 total += v
         return total
     """,
     ["assert roman_to_int('III') == 3", "assert roman_to_int('IV') == 4",
      "assert roman_to_int('IX') == 9", "assert roman_to_int('LVIII') == 58",
      "assert roman_to_int('MCMXCIV') == 1994", "assert roman_to_int('MMMCMXCIX') == 3999"]),
    ("medium", "def int_to_roman(n: int) -> str",
     "converts an integer 1 <= n <= 3999 to its standard Roman numeral (using subtractive "
     "forms IV, IX, XL, XC, CD, CM).",
     """
     def int_to_roman(n: int) -> str:
         table = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                  (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
         out = []
         for v, sym in table:
             while n >= v:
                 out.append(sym)
                 n -= v
         return "".join(out)
     """,
     ["assert int_to_roman(1) == 'I'", "assert int_to_roman(4) == 'IV'",
      "assert int_to_roman(58) == 'LVIII'", "assert int_to_roman(1994) == 'MCMXCIV'",
      "assert int_to_roman(3999) == 'MMMCMXCIX'"]),
    ("medium", "def rle_encode(s: str) -> str",
     "run-length encodes `s`: each maximal run of a repeated character becomes the character "
     "followed by the run length, e.g. 'aaabcc' -> 'a3b1c2'. The empty string encodes to ''.",
     """
     def rle_encode(s: str) -> str:
         out = []
         i = 0
         while i < len(s):
             j = i
             while j < len(s) and s[j] == s[i]:
                 j += 1
             out.append(s[i] + str(j - i))
             i = j
         return "".join(out)
     """,
     ["assert rle_encode('aaabcc') == 'a3b1c2'", "assert rle_encode('') == ''",
      "assert rle_encode('a') == 'a1'", "assert rle_encode('aaaaaaaaaaaa') == 'a12'",
      "assert rle_encode('abab') == 'a1b1a1b1'"]),
    ("medium", "def rle_decode(s: str) -> str",
     "decodes a run-length string made of letters each followed by a positive decimal count "
     "(possibly several digits), e.g. 'a3b1c12' -> 'aaab' + 12 'c's.",
     """
     def rle_decode(s: str) -> str:
         out = []
         i = 0
         while i < len(s):
             ch = s[i]
             j = i + 1
             while j < len(s) and s[j].isdigit():
                 j += 1
             out.append(ch * int(s[i + 1:j]))
             i = j
         return "".join(out)
     """,
     ["assert rle_decode('a3b1c2') == 'aaabcc'", "assert rle_decode('') == ''",
      "assert rle_decode('x12') == 'x' * 12", "assert rle_decode('a1b1a1') == 'aba'"]),
    ("medium", "def flatten(xs: list) -> list",
     "flattens an arbitrarily nested list into a flat list of its non-list elements, in order.",
     """
     def flatten(xs: list) -> list:
         out = []
         for x in xs:
             if isinstance(x, list):
                 out.extend(flatten(x))
             else:
                 out.append(x)
         return out
     """,
     ["assert flatten([1, [2, [3, [4]], 5]]) == [1, 2, 3, 4, 5]", "assert flatten([]) == []",
      "assert flatten([[], [[]]]) == []", "assert flatten(['a', ['b'], 'c']) == ['a', 'b', 'c']",
      "assert flatten([1, 2]) == [1, 2]"]),
    ("medium", "def is_balanced(s: str) -> bool",
     "returns True if the brackets (), [] and {} in `s` are balanced and properly nested; "
     "all other characters are ignored.",
     """
     def is_balanced(s: str) -> bool:
         pairs = {")": "(", "]": "[", "}": "{"}
         stack = []
         for c in s:
             if c in "([{":
                 stack.append(c)
             elif c in pairs:
                 if not stack or stack.pop() != pairs[c]:
                     return False
         return not stack
     """,
     ["assert is_balanced('([]{})') is True", "assert is_balanced('([)]') is False",
      "assert is_balanced('') is True", "assert is_balanced('((') is False",
      "assert is_balanced('a(b)c]') is False", "assert is_balanced('f(x[1]) {y}') is True"]),
    ("medium", "def top_k_words(text: str, k: int) -> list[str]",
     "returns the `k` most frequent lowercased whitespace-separated words of `text`, ordered by "
     "count descending and, for equal counts, alphabetically. Return fewer if there are fewer words.",
     """
     def top_k_words(text: str, k: int) -> list[str]:
         counts = {}
         for w in text.lower().split():
             counts[w] = counts.get(w, 0) + 1
         return sorted(counts, key=lambda w: (-counts[w], w))[:k]
     """,
     ["assert top_k_words('b a b c a b', 2) == ['b', 'a']",
      "assert top_k_words('x y z', 2) == ['x', 'y']",
      "assert top_k_words('', 3) == []",
      "assert top_k_words('A a B', 5) == ['a', 'b']"]),
    ("medium", "def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]",
     "merges overlapping or touching closed intervals (start <= end; (1, 3) and (3, 5) touch) "
     "and returns the merged intervals as tuples sorted by start. Input may be unsorted.",
     """
     def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
         out = []
         for s, e in sorted(intervals):
             if out and s <= out[-1][1]:
                 out[-1] = (out[-1][0], max(out[-1][1], e))
             else:
                 out.append((s, e))
         return out
     """,
     ["assert merge_intervals([(1, 3), (2, 6), (8, 10)]) == [(1, 6), (8, 10)]",
      "assert merge_intervals([(5, 7), (1, 3), (3, 4)]) == [(1, 4), (5, 7)]",
      "assert merge_intervals([]) == []",
      "assert merge_intervals([(1, 10), (2, 3)]) == [(1, 10)]"]),
    ("medium", "def binary_search(xs: list[int], target: int) -> int",
     "returns the index of `target` in the ascending list `xs` of distinct integers, or -1 if "
     "it is absent. Must run in O(log n).",
     """
     def binary_search(xs: list[int], target: int) -> int:
         lo, hi = 0, len(xs) - 1
         while lo <= hi:
             mid = (lo + hi) // 2
             if xs[mid] == target:
                 return mid
             if xs[mid] < target:
                 lo = mid + 1
             else:
                 hi = mid - 1
         return -1
     """,
     ["assert binary_search([1, 3, 5, 7, 9], 7) == 3", "assert binary_search([1, 3, 5], 4) == -1",
      "assert binary_search([], 1) == -1", "assert binary_search([2], 2) == 0",
      "assert binary_search(list(range(0, 1000, 2)), 998) == 499"]),
    ("medium", "def caesar_cipher(s: str, k: int) -> str",
     "shifts each ASCII letter of `s` forward by `k` positions in the alphabet, wrapping around "
     "and preserving case; k may be negative or larger than 26; other characters are unchanged.",
     """
     def caesar_cipher(s: str, k: int) -> str:
         out = []
         for c in s:
             if "a" <= c <= "z":
                 out.append(chr((ord(c) - 97 + k) % 26 + 97))
             elif "A" <= c <= "Z":
                 out.append(chr((ord(c) - 65 + k) % 26 + 65))
             else:
                 out.append(c)
         return "".join(out)
     """,
     ["assert caesar_cipher('abc', 1) == 'bcd'", "assert caesar_cipher('xyz', 3) == 'abc'",
      "assert caesar_cipher('Hello, World!', 13) == 'Uryyb, Jbeyq!'",
      "assert caesar_cipher('abc', -1) == 'zab'", "assert caesar_cipher('Abc', 52) == 'Abc'"]),
    ("medium", "def group_anagrams(words: list[str]) -> list[list[str]]",
     "groups words that are anagrams of each other (case-sensitive). Groups are ordered by the "
     "first appearance of their first word; words within a group keep their input order.",
     """
     def group_anagrams(words: list[str]) -> list[list[str]]:
         groups = {}
         for w in words:
             groups.setdefault("".join(sorted(w)), []).append(w)
         return list(groups.values())
     """,
     ["assert group_anagrams(['eat', 'tea', 'tan', 'ate', 'nat', 'bat']) == "
      "[['eat', 'tea', 'ate'], ['tan', 'nat'], ['bat']]",
      "assert group_anagrams([]) == []",
      "assert group_anagrams(['a']) == [['a']]",
      "assert group_anagrams(['ab', 'Ba', 'ba']) == [['ab', 'ba'], ['Ba']]"]),
    ("medium", "def parse_query(qs: str) -> dict[str, str]",
     "parses a query string like 'a=1&b=2' into a dict of strings. Pairs are separated by '&' "
     "and split at the first '='; a key without '=' maps to ''; empty pairs are skipped; "
     "later duplicates override earlier ones. No URL-decoding.",
     """
     def parse_query(qs: str) -> dict[str, str]:
         out = {}
         for part in qs.split("&"):
             if not part:
                 continue
             key, _, value = part.partition("=")
             out[key] = value
         return out
     """,
     ["assert parse_query('a=1&b=2') == {'a': '1', 'b': '2'}", "assert parse_query('') == {}",
      "assert parse_query('flag&x=') == {'flag': '', 'x': ''}",
      "assert parse_query('a=1&a=2') == {'a': '2'}",
      "assert parse_query('eq=a=b&&c=3') == {'eq': 'a=b', 'c': '3'}"]),
    ("medium", "def to_binary(n: int) -> str",
     "returns the binary representation of a non-negative integer without a '0b' prefix and "
     "without using bin(), format() or f-string format specs. 0 gives '0'.",
     """
     def to_binary(n: int) -> str:
         if n == 0:
             return "0"
         digits = []
         while n:
             digits.append(str(n % 2))
             n //= 2
         return "".join(reversed(digits))
     """,
     ["assert to_binary(0) == '0'", "assert to_binary(1) == '1'", "assert to_binary(10) == '1010'",
      "assert to_binary(255) == '11111111'", "assert to_binary(1024) == '10000000000'"]),
    ("medium", "def second_largest(xs: list[int]) -> int | None",
     "returns the second largest distinct value in `xs`, or None if there are fewer than two "
     "distinct values.",
     """
     def second_largest(xs: list[int]) -> int | None:
         vals = sorted(set(xs))
         return vals[-2] if len(vals) >= 2 else None
     """,
     ["assert second_largest([3, 1, 4, 4, 2]) == 3", "assert second_largest([5, 5]) is None",
      "assert second_largest([]) is None", "assert second_largest([-1, -2]) == -2"]),
    ("medium", "def rotate_right(xs: list, k: int) -> list",
     "returns a new list with `xs` rotated right by k >= 0 positions (k may exceed len(xs)), "
     "e.g. rotate_right([1, 2, 3, 4], 1) == [4, 1, 2, 3].",
     """
     def rotate_right(xs: list, k: int) -> list:
         if not xs:
             return []
         k %= len(xs)
         return xs[-k:] + xs[:-k] if k else list(xs)
     """,
     ["assert rotate_right([1, 2, 3, 4], 1) == [4, 1, 2, 3]",
      "assert rotate_right([1, 2, 3], 5) == [2, 3, 1]",
      "assert rotate_right([], 3) == []", "assert rotate_right([1, 2], 0) == [1, 2]",
      "assert rotate_right([1, 2, 3], 3) == [1, 2, 3]"]),
    ("medium", "def transpose(m: list[list]) -> list[list]",
     "returns the transpose of a rectangular matrix given as a list of rows; [] gives [].",
     """
     def transpose(m: list[list]) -> list[list]:
         return [list(col) for col in zip(*m)]
     """,
     ["assert transpose([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]",
      "assert transpose([]) == []", "assert transpose([[1]]) == [[1]]",
      "assert transpose([[1], [2]]) == [[1, 2]]"]),
    ("medium", "def deep_get(d: dict, path: str, default=None)",
     "follows the dot-separated keys in `path` (e.g. 'a.b.c') through nested dicts and returns "
     "the value found, or `default` if any key is missing or an intermediate value is not a dict.",
     """
     def deep_get(d: dict, path: str, default=None):
         cur = d
         for key in path.split("."):
             if not isinstance(cur, dict) or key not in cur:
                 return default
             cur = cur[key]
         return cur
     """,
     ["assert deep_get({'a': {'b': {'c': 1}}}, 'a.b.c') == 1",
      "assert deep_get({'a': {'b': 2}}, 'a.x', 'no') == 'no'",
      "assert deep_get({'a': 5}, 'a.b') is None",
      "assert deep_get({'a': {'b': None}}, 'a.b', 7) is None",
      "assert deep_get({'a': {'b': 2}}, 'a') == {'b': 2}"]),
    ("medium", "def compress_ranges(nums: list[int]) -> str",
     "formats a sorted list of distinct integers as comma-separated ranges: runs of consecutive "
     "numbers of length >= 2 become 'start-end', single numbers stay as is, e.g. "
     "[1, 2, 3, 5, 7, 8] -> '1-3,5,7-8'. [] gives ''.",
     """
     def compress_ranges(nums: list[int]) -> str:
         parts = []
         i = 0
         while i < len(nums):
             j = i
             while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
                 j += 1
             parts.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
             i = j + 1
         return ",".join(parts)
     """,
     ["assert compress_ranges([1, 2, 3, 5, 7, 8]) == '1-3,5,7-8'",
      "assert compress_ranges([]) == ''", "assert compress_ranges([4]) == '4'",
      "assert compress_ranges([1, 3, 5]) == '1,3,5'",
      "assert compress_ranges([-2, -1, 0, 1]) == '-2-1'"]),
    ("medium", "def is_valid_ipv4(s: str) -> bool",
     "returns True if `s` is a dotted-quad IPv4 address: exactly four parts, each only ASCII "
     "digits, value 0-255, and no leading zeros (except the single digit '0').",
     """
     def is_valid_ipv4(s: str) -> bool:
         parts = s.split(".")
         if len(parts) != 4:
             return False
         for p in parts:
             if not p or not all(c in "0123456789" for c in p):
                 return False
             if len(p) > 1 and p[0] == "0":
                 return False
             if int(p) > 255:
                 return False
         return True
     """,
     ["assert is_valid_ipv4('192.168.0.1') is True", "assert is_valid_ipv4('255.255.255.255') is True",
      "assert is_valid_ipv4('256.1.1.1') is False", "assert is_valid_ipv4('1.2.3') is False",
      "assert is_valid_ipv4('01.2.3.4') is False", "assert is_valid_ipv4('1.2..4') is False"]),
    ("medium", "def prime_factors(n: int) -> list[int]",
     "returns the prime factors of n >= 2 in ascending order, repeated by multiplicity, "
     "e.g. prime_factors(12) == [2, 2, 3].",
     """
     def prime_factors(n: int) -> list[int]:
         out = []
         p = 2
         while p * p <= n:
             while n % p == 0:
                 out.append(p)
                 n //= p
             p += 1
         if n > 1:
             out.append(n)
         return out
     """,
     ["assert prime_factors(12) == [2, 2, 3]", "assert prime_factors(13) == [13]",
      "assert prime_factors(2) == [2]", "assert prime_factors(360) == [2, 2, 2, 3, 3, 5]",
      "assert prime_factors(9973 * 2) == [2, 9973]"]),
    ("medium", "def most_common_char(s: str) -> str",
     "returns the character that occurs most often in the non-empty string `s`; on a tie, the "
     "one whose first occurrence comes earliest.",
     """
     def most_common_char(s: str) -> str:
         counts = {}
         for c in s:
             counts[c] = counts.get(c, 0) + 1
         best = max(counts.values())
         for c in s:
             if counts[c] == best:
                 return c
     """,
     ["assert most_common_char('banana') == 'a'", "assert most_common_char('abab') == 'a'",
      "assert most_common_char('bbaa') == 'b'", "assert most_common_char('z') == 'z'"]),
    ("medium", "def invert_dict(d: dict[str, int]) -> dict[int, list[str]]",
     "returns a dict mapping each value of `d` to the alphabetically sorted list of keys that "
     "have that value.",
     """
     def invert_dict(d: dict[str, int]) -> dict[int, list[str]]:
         out = {}
         for k, v in d.items():
             out.setdefault(v, []).append(k)
         return {v: sorted(ks) for v, ks in out.items()}
     """,
     ["assert invert_dict({'b': 1, 'a': 1, 'c': 2}) == {1: ['a', 'b'], 2: ['c']}",
      "assert invert_dict({}) == {}", "assert invert_dict({'x': 0}) == {0: ['x']}"]),
    ("medium", "def parse_duration(s: str) -> int",
     "converts a duration like '1h30m15s' to total seconds. Components h, m, s appear in that "
     "order, each optional (at least one present), each a non-negative integer, e.g. '45m' -> 2700.",
     """
     def parse_duration(s: str) -> int:
         mult = {"h": 3600, "m": 60, "s": 1}
         total, digits = 0, ""
         for c in s:
             if c.isdigit():
                 digits += c
             else:
                 total += int(digits) * mult[c]
                 digits = ""
         return total
     """,
     ["assert parse_duration('1h30m15s') == 5415", "assert parse_duration('45m') == 2700",
      "assert parse_duration('10s') == 10", "assert parse_duration('2h') == 7200",
      "assert parse_duration('0h120m') == 7200"]),
    ("medium", "def max_subarray_sum(xs: list[int]) -> int",
     "returns the largest sum of a non-empty contiguous subarray of the non-empty list `xs`.",
     """
     def max_subarray_sum(xs: list[int]) -> int:
         best = cur = xs[0]
         for x in xs[1:]:
             cur = max(x, cur + x)
             best = max(best, cur)
         return best
     """,
     ["assert max_subarray_sum([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6",
      "assert max_subarray_sum([-3, -1, -2]) == -1", "assert max_subarray_sum([5]) == 5",
      "assert max_subarray_sum([1, 2, 3]) == 6"]),
    # ---------------- hard ----------------
    ("hard", "def lcs_length(a: str, b: str) -> int",
     "returns the length of the longest common subsequence of `a` and `b`.",
     """
     def lcs_length(a: str, b: str) -> int:
         prev = [0] * (len(b) + 1)
         for ca in a:
             cur = [0]
             for j, cb in enumerate(b):
                 cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
             prev = cur
         return prev[-1]
     """,
     ["assert lcs_length('abcde', 'ace') == 3", "assert lcs_length('abc', 'def') == 0",
      "assert lcs_length('', 'abc') == 0", "assert lcs_length('AGGTAB', 'GXTXAYB') == 4",
      "assert lcs_length('aaaa', 'aa') == 2"]),
    ("hard", "def edit_distance(a: str, b: str) -> int",
     "returns the Levenshtein distance between `a` and `b` (minimum number of single-character "
     "insertions, deletions and substitutions).",
     """
     def edit_distance(a: str, b: str) -> int:
         prev = list(range(len(b) + 1))
         for i, ca in enumerate(a, 1):
             cur = [i]
             for j, cb in enumerate(b, 1):
                 cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
             prev = cur
         return prev[-1]
     """,
     ["assert edit_distance('kitten', 'sitting') == 3", "assert edit_distance('', 'abc') == 3",
      "assert edit_distance('abc', 'abc') == 0", "assert edit_distance('flaw', 'lawn') == 2",
      "assert edit_distance('intention', 'execution') == 5"]),
    ("hard", "def longest_palindrome(s: str) -> str",
     "returns the longest palindromic substring of `s` (case-sensitive); if several have the "
     "maximum length, return the one that starts earliest. '' gives ''.",
     """
     def longest_palindrome(s: str) -> str:
         best = ""
         for center in range(2 * len(s) - 1):
             lo, hi = center // 2, center // 2 + center % 2
             while lo >= 0 and hi < len(s) and s[lo] == s[hi]:
                 lo -= 1
                 hi += 1
             cand = s[lo + 1:hi]
             if len(cand) > len(best) or (len(cand) == len(best) and s.find(cand) < s.find(best)):
                 best = cand
         return best
     """,
     ["assert longest_palindrome('babad') == 'bab'", "assert longest_palindrome('cbbd') == 'bb'",
      "assert longest_palindrome('') == ''", "assert longest_palindrome('abc') == 'a'",
      "assert longest_palindrome('forgeeksskeegfor') == 'geeksskeeg'",
      "assert longest_palindrome('xabaccab') == 'baccab'"]),
    ("hard", "def eval_rpn(tokens: list[str]) -> int",
     "evaluates a valid Reverse Polish Notation expression of integers and the operators "
     "+, -, *, /, where / is integer division truncating toward zero.",
     """
     def eval_rpn(tokens: list[str]) -> int:
         stack = []
         for t in tokens:
             if t in ("+", "-", "*", "/"):
                 b = stack.pop()
                 a = stack.pop()
                 if t == "+":
                     stack.append(a + b)
                 elif t == "-":
                     stack.append(a - b)
                 elif t == "*":
                     stack.append(a * b)
                 else:
                     q = abs(a) // abs(b)
                     stack.append(q if (a >= 0) == (b >= 0) else -q)
             else:
                 stack.append(int(t))
         return stack[-1]
     """,
     ["assert eval_rpn(['2', '1', '+', '3', '*']) == 9",
      "assert eval_rpn(['4', '13', '5', '/', '+']) == 6",
      "assert eval_rpn(['-7', '2', '/']) == -3", "assert eval_rpn(['42']) == 42",
      "assert eval_rpn(['10', '6', '9', '3', '+', '-11', '*', '/', '*', '17', '+', '5', '+']) == 22"]),
    ("hard", "def calculate(expr: str) -> int",
     "evaluates an arithmetic expression of non-negative integers, +, -, * and parentheses, "
     "with spaces allowed, using normal precedence and left-to-right associativity. "
     "Do not use eval().",
     """
     def calculate(expr: str) -> int:
         toks = []
         i = 0
         while i < len(expr):
             c = expr[i]
             if c.isdigit():
                 j = i
                 while j < len(expr) and expr[j].isdigit():
                     j += 1
                 toks.append(int(expr[i:j]))
                 i = j
                 continue
             if c in "+-*()":
                 toks.append(c)
             i += 1
         pos = 0

         def expr_():
             nonlocal pos
             v = term()
             while pos < len(toks) and toks[pos] in ("+", "-"):
                 op = toks[pos]
                 pos += 1
                 r = term()
                 v = v + r if op == "+" else v - r
             return v

         def term():
             nonlocal pos
             v = atom()
             while pos < len(toks) and toks[pos] == "*":
                 pos += 1
                 v *= atom()
             return v

         def atom():
             nonlocal pos
             t = toks[pos]
             pos += 1
             if t == "(":
                 v = expr_()
                 pos += 1
                 return v
             return t

         return expr_()
     """,
     ["assert calculate('1 + 2 * 3') == 7", "assert calculate('(1 + 2) * 3') == 9",
      "assert calculate('10 - 4 - 3') == 3", "assert calculate('2 * (3 + 4) * 5') == 70",
      "assert calculate('42') == 42", "assert calculate('((2))-(3*(4-1))') == -7"]),
    ("hard", "def spiral_order(m: list[list[int]]) -> list[int]",
     "returns the elements of a rectangular matrix in clockwise spiral order starting at the "
     "top-left corner; [] gives [].",
     """
     def spiral_order(m: list[list[int]]) -> list[int]:
         out = []
         if not m:
             return out
         top, bottom, left, right = 0, len(m) - 1, 0, len(m[0]) - 1
         while top <= bottom and left <= right:
             for j in range(left, right + 1):
                 out.append(m[top][j])
             for i in range(top + 1, bottom + 1):
                 out.append(m[i][right])
             if top < bottom:
                 for j in range(right - 1, left - 1, -1):
                     out.append(m[bottom][j])
             if left < right:
                 for i in range(bottom - 1, top, -1):
                     out.append(m[i][left])
             top, bottom, left, right = top + 1, bottom - 1, left + 1, right - 1
         return out
     """,
     ["assert spiral_order([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [1, 2, 3, 6, 9, 8, 7, 4, 5]",
      "assert spiral_order([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]) == "
      "[1, 2, 3, 4, 8, 12, 11, 10, 9, 5, 6, 7]",
      "assert spiral_order([]) == []", "assert spiral_order([[1], [2], [3]]) == [1, 2, 3]",
      "assert spiral_order([[1, 2, 3]]) == [1, 2, 3]"]),
    ("hard", "def count_islands(grid: list[str]) -> int",
     "counts islands in a grid given as equal-length strings of '1' (land) and '0' (water); "
     "an island is a group of land cells connected horizontally or vertically.",
     """
     def count_islands(grid: list[str]) -> int:
         seen = set()
         rows = len(grid)
         cols = len(grid[0]) if grid else 0
         count = 0
         for r in range(rows):
             for c in range(cols):
                 if grid[r][c] != "1" or (r, c) in seen:
                     continue
                 count += 1
                 stack = [(r, c)]
                 seen.add((r, c))
                 while stack:
                     y, x = stack.pop()
                     for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                         if 0 <= ny < rows and 0 <= nx < cols and grid[ny][nx] == "1" \\
                                 and (ny, nx) not in seen:
                             seen.add((ny, nx))
                             stack.append((ny, nx))
         return count
     """,
     ["assert count_islands(['11000', '11000', '00100', '00011']) == 3",
      "assert count_islands([]) == 0", "assert count_islands(['000']) == 0",
      "assert count_islands(['101', '010', '101']) == 5",
      "assert count_islands(['111', '101', '111']) == 1"]),
    ("hard", "def shortest_path(grid: list[str]) -> int",
     "returns the minimum number of moves from the top-left to the bottom-right cell of a grid "
     "of equal-length strings ('.' open, '#' wall), moving up/down/left/right through open "
     "cells; -1 if unreachable or either end is a wall. A 1x1 open grid gives 0.",
     """
     def shortest_path(grid: list[str]) -> int:
         from collections import deque
         rows, cols = len(grid), len(grid[0])
         if grid[0][0] == "#" or grid[-1][-1] == "#":
             return -1
         dist = {(0, 0): 0}
         q = deque([(0, 0)])
         while q:
             r, c = q.popleft()
             if (r, c) == (rows - 1, cols - 1):
                 return dist[(r, c)]
             for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                 if 0 <= nr < rows and 0 <= nc < cols and grid[nr][nc] == "." \\
                         and (nr, nc) not in dist:
                     dist[(nr, nc)] = dist[(r, c)] + 1
                     q.append((nr, nc))
         return -1
     """,
     ["assert shortest_path(['...', '.#.', '...']) == 4",
      "assert shortest_path(['.#', '#.']) == -1", "assert shortest_path(['.']) == 0",
      "assert shortest_path(['..#', '#..', '##.']) == 4",
      "assert shortest_path(['.....', '####.', '.....', '.####', '.....']) == 16"]),
    ("hard", "def topo_sort(graph: dict[str, list[str]]) -> list[str] | None",
     "returns a topological order of a directed graph where graph[u] lists nodes that must come "
     "after u (nodes may appear only as targets). Among valid orders return the "
     "lexicographically smallest (always pick the smallest available node). Return None "
     "if there is a cycle.",
     """
     def topo_sort(graph: dict[str, list[str]]) -> list[str] | None:
         import heapq
         nodes = set(graph)
         for vs in graph.values():
             nodes.update(vs)
         indeg = {n: 0 for n in nodes}
         for vs in graph.values():
             for v in vs:
                 indeg[v] += 1
         heap = [n for n in nodes if indeg[n] == 0]
         heapq.heapify(heap)
         out = []
         while heap:
             u = heapq.heappop(heap)
             out.append(u)
             for v in graph.get(u, []):
                 indeg[v] -= 1
                 if indeg[v] == 0:
                     heapq.heappush(heap, v)
         if len(out) != len(nodes):
             return None
         return out
     """,
     ["assert topo_sort({'a': ['c'], 'b': ['c'], 'c': ['d']}) == ['a', 'b', 'c', 'd']",
      "assert topo_sort({'b': ['a'], 'c': []}) == ['b', 'a', 'c']",
      "assert topo_sort({}) == []",
      "assert topo_sort({'x': ['y'], 'y': ['x'], 'a': ['x']}) is None",
      "assert topo_sort({'d': ['a'], 'c': ['a']}) == ['c', 'd', 'a']"]),
    ("hard", "def coin_change(coins: list[int], amount: int) -> int",
     "returns the minimum number of coins (unlimited supply of each positive denomination) "
     "that sum to `amount`, or -1 if impossible; amount 0 needs 0 coins.",
     """
     def coin_change(coins: list[int], amount: int) -> int:
         INF = amount + 1
         best = [0] + [INF] * amount
         for a in range(1, amount + 1):
             for c in coins:
                 if c <= a and best[a - c] + 1 < best[a]:
                     best[a] = best[a - c] + 1
         return best[amount] if best[amount] < INF else -1
     """,
     ["assert coin_change([1, 2, 5], 11) == 3", "assert coin_change([2], 3) == -1",
      "assert coin_change([1], 0) == 0", "assert coin_change([1, 3, 4], 6) == 2",
      "assert coin_change([186, 419, 83, 408], 6249) == 20"]),
    ("hard", "def lis_length(xs: list[int]) -> int",
     "returns the length of the longest strictly increasing subsequence of `xs` in "
     "O(n log n) time.",
     """
     def lis_length(xs: list[int]) -> int:
         import bisect
         tails = []
         for x in xs:
             i = bisect.bisect_left(tails, x)
             if i == len(tails):
                 tails.append(x)
             else:
                 tails[i] = x
         return len(tails)
     """,
     ["assert lis_length([10, 9, 2, 5, 3, 7, 101, 18]) == 4", "assert lis_length([]) == 0",
      "assert lis_length([7, 7, 7]) == 1", "assert lis_length([0, 1, 0, 3, 2, 3]) == 4",
      "assert lis_length(list(range(2000))) == 2000"]),
    ("hard", "def unique_permutations(s: str) -> list[str]",
     "returns all distinct permutations of the characters of `s`, sorted ascending; "
     "'' gives [''].",
     """
     def unique_permutations(s: str) -> list[str]:
         out = []
         chars = sorted(s)
         used = [False] * len(chars)
         path = []

         def go():
             if len(path) == len(chars):
                 out.append("".join(path))
                 return
             for i, c in enumerate(chars):
                 if used[i] or (i > 0 and chars[i] == chars[i - 1] and not used[i - 1]):
                     continue
                 used[i] = True
                 path.append(c)
                 go()
                 path.pop()
                 used[i] = False

         go()
         return out
     """,
     ["assert unique_permutations('aab') == ['aab', 'aba', 'baa']",
      "assert unique_permutations('') == ['']",
      "assert unique_permutations('abc') == ['abc', 'acb', 'bac', 'bca', 'cab', 'cba']",
      "assert len(unique_permutations('aabbc')) == 30"]),
    ("hard", "def word_break(s: str, words: list[str]) -> bool",
     "returns True if `s` can be split into a sequence of one or more words from `words` "
     "(words may be reused); the empty string returns True.",
     """
     def word_break(s: str, words: list[str]) -> bool:
         ws = set(words)
         ok = [True] + [False] * len(s)
         for i in range(1, len(s) + 1):
             ok[i] = any(ok[j] and s[j:i] in ws for j in range(i))
         return ok[-1]
     """,
     ["assert word_break('leetcode', ['leet', 'code']) is True",
      "assert word_break('applepenapple', ['apple', 'pen']) is True",
      "assert word_break('catsandog', ['cats', 'dog', 'sand', 'and', 'cat']) is False",
      "assert word_break('', ['a']) is True", "assert word_break('aaaaab', ['a', 'aa']) is False"]),
    ("hard", "def next_permutation(xs: list[int]) -> list[int]",
     "returns a new list holding the next lexicographically greater permutation of `xs`, or "
     "the ascending sort of `xs` if it is already the greatest.",
     """
     def next_permutation(xs: list[int]) -> list[int]:
         a = list(xs)
         i = len(a) - 2
         while i >= 0 and a[i] >= a[i + 1]:
             i -= 1
         if i >= 0:
             j = len(a) - 1
             while a[j] <= a[i]:
                 j -= 1
             a[i], a[j] = a[j], a[i]
         a[i + 1:] = reversed(a[i + 1:])
         return a
     """,
     ["assert next_permutation([1, 2, 3]) == [1, 3, 2]",
      "assert next_permutation([3, 2, 1]) == [1, 2, 3]",
      "assert next_permutation([1, 1, 5]) == [1, 5, 1]",
      "assert next_permutation([1, 3, 2]) == [2, 1, 3]", "assert next_permutation([]) == []"]),
    ("hard", "def num_decodings(s: str) -> int",
     "counts the ways to decode a digit string where '1'..'26' map to 'A'..'Z' (a '0' can only "
     "appear as part of '10' or '20'); returns 0 if no decoding exists. s is non-empty.",
     """
     def num_decodings(s: str) -> int:
         prev2, prev1 = 1, 1 if s[0] != "0" else 0
         for i in range(1, len(s)):
             cur = prev1 if s[i] != "0" else 0
             if 10 <= int(s[i - 1:i + 1]) <= 26:
                 cur += prev2
             prev2, prev1 = prev1, cur
         return prev1
     """,
     ["assert num_decodings('12') == 2", "assert num_decodings('226') == 3",
      "assert num_decodings('06') == 0", "assert num_decodings('10') == 1",
      "assert num_decodings('100') == 0", "assert num_decodings('11106') == 2"]),
    ("hard", "def parse_csv_line(line: str) -> list[str]",
     "splits one CSV line into fields: fields are separated by commas; a field wrapped in "
     "double quotes may contain commas, and a doubled quote (\"\") inside it is a literal quote. "
     "Do not use the csv module. '' gives [''].",
     """
     def parse_csv_line(line: str) -> list[str]:
         fields, cur = [], []
         i, in_q = 0, False
         while i < len(line):
             c = line[i]
             if in_q:
                 if c == '"':
                     if i + 1 < len(line) and line[i + 1] == '"':
                         cur.append('"')
                         i += 1
                     else:
                         in_q = False
                 else:
                     cur.append(c)
             elif c == '"':
                 in_q = True
             elif c == ",":
                 fields.append("".join(cur))
                 cur = []
             else:
                 cur.append(c)
             i += 1
         fields.append("".join(cur))
         return fields
     """,
     ["assert parse_csv_line('a,b,c') == ['a', 'b', 'c']",
      "assert parse_csv_line('1,\"x,y\",2') == ['1', 'x,y', '2']",
      "assert parse_csv_line('\"say \"\"hi\"\"\",z') == ['say \"hi\"', 'z']",
      "assert parse_csv_line('') == ['']", "assert parse_csv_line('a,,') == ['a', '', '']"]),
    ("hard", "def longest_unique_substring(s: str) -> int",
     "returns the length of the longest substring of `s` without repeating characters, "
     "in O(n) time.",
     """
     def longest_unique_substring(s: str) -> int:
         last = {}
         start = best = 0
         for i, c in enumerate(s):
             if c in last and last[c] >= start:
                 start = last[c] + 1
             last[c] = i
             best = max(best, i - start + 1)
         return best
     """,
     ["assert longest_unique_substring('abcabcbb') == 3",
      "assert longest_unique_substring('bbbbb') == 1",
      "assert longest_unique_substring('pwwkew') == 3", "assert longest_unique_substring('') == 0",
      "assert longest_unique_substring('abba') == 2"]),
    ("hard", "def is_valid_sudoku(board: list[str]) -> bool",
     "checks a partially filled 9x9 Sudoku given as 9 strings of 9 characters ('1'-'9' or "
     "'.' for empty): returns True if no digit repeats in any row, column or 3x3 box.",
     """
     def is_valid_sudoku(board: list[str]) -> bool:
         seen = set()
         for r in range(9):
             for c in range(9):
                 d = board[r][c]
                 if d == ".":
                     continue
                 keys = (("r", r, d), ("c", c, d), ("b", r // 3, c // 3, d))
                 if any(k in seen for k in keys):
                     return False
                 seen.update(keys)
         return True
     """,
     ["assert is_valid_sudoku(['.' * 9] * 9) is True",
      "assert is_valid_sudoku(['53..7....', '6..195...', '.98....6.', '8...6...3', "
      "'4..8.3..1', '7...2...6', '.6....28.', '...419..5', '....8..79']) is True",
      "assert is_valid_sudoku(['5...5....'] + ['.' * 9] * 8) is False",
      "assert is_valid_sudoku(['1........', '.........', '..1......'] + ['.' * 9] * 6) is False",
      "assert is_valid_sudoku(['1........'] + ['.' * 9] * 7 + ['1........']) is False"]),
    ("hard", "def generate_parentheses(n: int) -> list[str]",
     "returns all strings of n pairs of well-formed parentheses, sorted ascending "
     "('(' sorts before ')'); n = 0 gives [''].",
     """
     def generate_parentheses(n: int) -> list[str]:
         out = []

         def go(s, opened, closed):
             if len(s) == 2 * n:
                 out.append(s)
                 return
             if opened < n:
                 go(s + "(", opened + 1, closed)
             if closed < opened:
                 go(s + ")", opened, closed + 1)

         go("", 0, 0)
         return sorted(out)
     """,
     ["assert generate_parentheses(0) == ['']", "assert generate_parentheses(1) == ['()']",
      "assert generate_parentheses(3) == ['((()))', '(()())', '(())()', '()(())', '()()()']",
      "assert len(generate_parentheses(5)) == 42"]),
    ("hard", "def n_queens(n: int) -> int",
     "returns the number of ways to place n non-attacking queens on an n x n chessboard "
     "(n >= 1).",
     """
     def n_queens(n: int) -> int:
         def go(row, cols, d1, d2):
             if row == n:
                 return 1
             total = 0
             for c in range(n):
                 if c in cols or row - c in d1 or row + c in d2:
                     continue
                 total += go(row + 1, cols | {c}, d1 | {row - c}, d2 | {row + c})
             return total
         return go(0, frozenset(), frozenset(), frozenset())
     """,
     ["assert n_queens(1) == 1", "assert n_queens(2) == 0", "assert n_queens(4) == 2",
      "assert n_queens(6) == 4", "assert n_queens(8) == 92"]),
    ("hard", "def trap_rain_water(heights: list[int]) -> int",
     "returns how many units of water are trapped after rain by bars of the given "
     "non-negative heights (each bar has width 1).",
     """
     def trap_rain_water(heights: list[int]) -> int:
         lo, hi = 0, len(heights) - 1
         left_max = right_max = water = 0
         while lo < hi:
             if heights[lo] < heights[hi]:
                 left_max = max(left_max, heights[lo])
                 water += left_max - heights[lo]
                 lo += 1
             else:
                 right_max = max(right_max, heights[hi])
                 water += right_max - heights[hi]
                 hi -= 1
         return water
     """,
     ["assert trap_rain_water([0, 1, 0, 2, 1, 0, 1, 3, 2, 1, 2, 1]) == 6",
      "assert trap_rain_water([4, 2, 0, 3, 2, 5]) == 9", "assert trap_rain_water([]) == 0",
      "assert trap_rain_water([1, 2, 3]) == 0", "assert trap_rain_water([3, 0, 3]) == 3"]),
    ("hard", "def dijkstra(graph: dict[str, dict[str, int]], src: str, dst: str) -> int",
     "returns the length of the shortest path from `src` to `dst` in a directed graph with "
     "non-negative edge weights (graph[u][v] = weight of edge u->v), or -1 if unreachable; "
     "src == dst gives 0.",
     """
     def dijkstra(graph: dict[str, dict[str, int]], src: str, dst: str) -> int:
         import heapq
         dist = {src: 0}
         heap = [(0, src)]
         while heap:
             d, u = heapq.heappop(heap)
             if u == dst:
                 return d
             if d > dist.get(u, float("inf")):
                 continue
             for v, w in graph.get(u, {}).items():
                 nd = d + w
                 if nd < dist.get(v, float("inf")):
                     dist[v] = nd
                     heapq.heappush(heap, (nd, v))
         return -1
     """,
     ["assert dijkstra({'a': {'b': 1, 'c': 4}, 'b': {'c': 2}, 'c': {}}, 'a', 'c') == 3",
      "assert dijkstra({'a': {'b': 1}}, 'b', 'a') == -1",
      "assert dijkstra({}, 'x', 'x') == 0",
      "assert dijkstra({'a': {'b': 5, 'c': 1}, 'c': {'d': 1}, 'd': {'b': 1}}, 'a', 'b') == 3"]),
    ("hard", "def merge_k_sorted(lists: list[list[int]]) -> list[int]",
     "merges any number of ascending lists into one ascending list in O(N log k) time, "
     "without calling sorted() or list.sort().",
     """
     def merge_k_sorted(lists: list[list[int]]) -> list[int]:
         import heapq
         heap = [(lst[0], i, 0) for i, lst in enumerate(lists) if lst]
         heapq.heapify(heap)
         out = []
         while heap:
             v, i, j = heapq.heappop(heap)
             out.append(v)
             if j + 1 < len(lists[i]):
                 heapq.heappush(heap, (lists[i][j + 1], i, j + 1))
         return out
     """,
     ["assert merge_k_sorted([[1, 4, 5], [1, 3, 4], [2, 6]]) == [1, 1, 2, 3, 4, 4, 5, 6]",
      "assert merge_k_sorted([]) == []", "assert merge_k_sorted([[], []]) == []",
      "assert merge_k_sorted([[3], [1, 2]]) == [1, 2, 3]"]),
]

CODE_SYSTEM = (
    "Write the requested Python function. Reply with one ```python fenced block containing "
    "only the function (and imports it needs)."
)

CODE_EXAMPLES = [
    {"prompt": "Write a Python function `def add(a: int, b: int) -> int` that returns the sum of "
               "`a` and `b`.",
     "response": "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"},
    {"prompt": "Write a Python function `def count_evens(xs: list[int]) -> int` that returns how "
               "many elements of `xs` are even.",
     "response": "```python\ndef count_evens(xs: list[int]) -> int:\n"
                 "    return sum(1 for x in xs if x % 2 == 0)\n```"},
    {"prompt": "Write a Python function `def last_word_length(s: str) -> int` that returns the "
               "length of the last whitespace-separated word in `s`, or 0 if there is none.",
     "response": "```python\ndef last_word_length(s: str) -> int:\n    words = s.split()\n"
                 "    return len(words[-1]) if words else 0\n```"},
]


def make_code() -> list[dict]:
    items = []
    for n, (diff, sig, desc, sol, tests) in enumerate(CODE, 1):
        items.append({
            "id": f"code-{n:03d}",
            "prompt": f"Write a Python function `{sig}` that {desc}",
            "expected": textwrap.dedent(sol).strip("\n") + "\n",
            "difficulty": diff,
            "tests": tests,
            "_signature": sig,
        })
    return items


# ---------------------------------------------------------------------------
# analysis: hand-written questions
# ---------------------------------------------------------------------------

def big_o(s: str) -> list[str]:
    variants = {
        "1": ["O(1)"],
        "log n": ["O(log n)", "O(logn)", "O(log(n))"],
        "n": ["O(n)"],
        "sqrt(n)": ["O(sqrt(n))", "O(sqrt n)", "O(√n)", "O(n^0.5)", "O(n^(1/2))"],
        "n log n": ["O(n log n)", "O(nlogn)", "O(n*log n)", "O(n log(n))", "O(n*log(n))"],
        "n^2": ["O(n^2)", "O(n**2)", "O(n²)", "O(n*n)"],
        "n^3": ["O(n^3)", "O(n**3)", "O(n³)"],
        "n*m": ["O(n*m)", "O(nm)", "O(n m)", "O(m*n)", "O(mn)"],
    }
    return variants[s]


def py(code: str) -> str:
    return "```python\n" + textwrap.dedent(code).strip("\n") + "\n```"


def numbered(code: str) -> str:
    lines = textwrap.dedent(code).strip("\n").splitlines()
    return "```python\n" + "\n".join(f"{i:>2} {ln}" for i, ln in enumerate(lines, 1)) + "\n```"


PRINT_Q = "What does this Python 3 code print?"
COMPLEXITY_Q = "What is the time complexity of this function in terms of n? Give a tight big-O bound."

USERS_SQL = ("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, country TEXT);\n"
             "INSERT INTO users VALUES (1, 'Ann', 'US'), (2, 'Bob', 'UK'), (3, 'Cid', 'US'), "
             "(4, 'Dee', NULL);")
ORDERS_SQL = ("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, amount INTEGER);\n"
              "INSERT INTO orders VALUES (1, 1, 10), (2, 1, 5), (3, 3, 7), (4, 9, 20);")

# Each entry: dict(difficulty, prompt, expected, [exec=code] | [sql=(setup, query, mode)])
ANALYSIS: list[dict] = []


def A(difficulty: str, prompt: str, expected, **kw) -> None:
    ANALYSIS.append({"difficulty": difficulty, "prompt": prompt, "expected": expected, **kw})


def prints(difficulty: str, code: str, expected: str) -> None:
    code = textwrap.dedent(code).strip("\n") + "\n"
    A(difficulty, f"{PRINT_Q}\n{py(code)}", expected, exec=code)


def complexity(difficulty: str, code: str, bound: str, note: str = "") -> None:
    q = COMPLEXITY_Q + (" " + note if note else "")
    A(difficulty, f"{q}\n{py(code)}", big_o(bound))


def sql(difficulty: str, setup: str, query: str, mode: str, expected: str) -> None:
    q = ("How many rows does the final query return?" if mode == "rows"
         else "What single value does the final query return?")
    A(difficulty, f"{q} (SQLite)\n```sql\n{setup}\n{query}\n```", expected,
      sql=(setup, query, mode))


def bugline(difficulty: str, what: str, code: str, line: int) -> None:
    A(difficulty, f"{what} Which line number contains the bug?\n{numbered(code)}", str(line))


# --- time complexity -------------------------------------------------------
complexity("easy", """
    def total(xs):
        s = 0
        for x in xs:
            s += x
        return s
    """, "n", "(n = len(xs))")
complexity("easy", """
    def first(xs):
        return xs[0] if xs else None
    """, "1", "(n = len(xs))")
A("easy", "What is the average-case time complexity of `x in s` when `s` is a Python set of "
  "n elements? Give a big-O bound.", big_o("1"))
A("easy", "What is the time complexity of `x in xs` when `xs` is a Python list of n elements "
  "and x is not in it? Give a big-O bound.", big_o("n"))
complexity("medium", """
    def pairs(n):
        c = 0
        for i in range(n):
            for j in range(i, n):
                c += 1
        return c
    """, "n^2")
complexity("medium", """
    def halvings(n):
        steps = 0
        while n > 1:
            n //= 2
            steps += 1
        return steps
    """, "log n")
complexity("medium", """
    def f(n):
        c = 0
        for i in range(n):
            j = 1
            while j < n:
                j *= 2
                c += 1
        return c
    """, "n log n")
complexity("medium", """
    def g(n):
        c = 0
        for i in range(n):
            for j in range(n):
                for k in range(10):
                    c += 1
        return c
    """, "n^2")
A("medium", "What is the time complexity of `xs.pop(0)` on a Python list of n elements? "
  "Give a big-O bound.", big_o("n"))
A("medium", "What is the worst-case time complexity of quicksort on n elements with a "
  "first-element pivot? Give a big-O bound.", big_o("n^2"))
complexity("hard", """
    def r(n):
        i = 1
        while i * i <= n:
            i += 1
        return i
    """, "sqrt(n)")
complexity("hard", """
    def h(n):
        if n <= 1:
            return 1
        return h(n // 2) + h(n // 2)
    """, "n")
complexity("hard", """
    def harmonic(n):
        c = 0
        for i in range(1, n + 1):
            for j in range(0, n, i):
                c += 1
        return c
    """, "n log n")
complexity("hard", """
    def build(n):
        xs = []
        for i in range(n):
            xs.insert(0, i)
        return xs
    """, "n^2")
A("hard", "What is the time complexity of `heapq.heapify(xs)` on a list of n elements? "
  "Give a tight big-O bound.", big_o("n"))
complexity("hard", """
    def grid_sum(grid):
        return sum(sum(row) for row in grid)
    """, "n*m", "(grid has n rows of m columns; answer in terms of n and m)")

# --- what does this print (verified by execution) --------------------------
prints("easy", 'print(len("hello world"))', "11")
prints("easy", """
    x = [1, 2, 3]
    y = x
    y.append(4)
    print(len(x))
    """, "4")
prints("easy", "print(7 // 2)", "3")
prints("easy", 'print("ab" * 3)', "ababab")
prints("easy", "print(sum(range(5)))", "10")
prints("easy", 'print("python"[1:4])', "yth")
prints("easy", 'print(max("apple", "fig", "banana", key=len))', "banana")
prints("medium", "print(-7 // 2)", "-4")
prints("medium", """
    def f(x, acc=[]):
        acc.append(x)
        return len(acc)
    f(1)
    f(2)
    print(f(3))
    """, "3")
prints("medium", "print(0.1 + 0.2 == 0.3)", "False")
prints("medium", 'print(len("a,b,,c".split(",")))', "4")
prints("medium", """
    d = {"a": 1}
    d.setdefault("a", 5)
    print(d["a"])
    """, "1")
prints("medium", "print(True + True)", "2")
prints("medium", 'print("".join(sorted("banana")))', "aaabnn")
prints("medium", 'print(int("1A", 16))', "26")
prints("hard", "print(round(2.5))", "2")
prints("hard", """
    fs = [lambda: i for i in range(3)]
    print(fs[0]())
    """, "2")
prints("hard", """
    a = [[0] * 2] * 2
    a[0][0] = 1
    print(a[1][0])
    """, "1")
prints("hard", """
    def f():
        try:
            return 1
        finally:
            return 2
    print(f())
    """, "2")
prints("hard", """
    g = (x * x for x in range(4))
    sum(g)
    print(sum(g))
    """, "0")
prints("hard", "print(len({1, 1.0, True}))", "1")
prints("hard", 'print(len("€".encode("utf-8")))', "3")
prints("hard", """
    x = 10
    def f():
        x = 20
        def g():
            nonlocal x
            x += 1
        g()
        return x
    f()
    print(x)
    """, "10")

# --- SQL (verified with sqlite3) --------------------------------------------
sql("easy", USERS_SQL, "SELECT COUNT(*) FROM users WHERE country = 'US';", "value", "2")
sql("medium", USERS_SQL, "SELECT COUNT(country) FROM users;", "value", "3")
sql("medium", USERS_SQL + "\n" + ORDERS_SQL,
    "SELECT * FROM users u JOIN orders o ON o.user_id = u.id;", "rows", "3")
sql("hard", USERS_SQL, "SELECT * FROM users WHERE country <> 'US';", "rows", "1")
sql("hard", USERS_SQL + "\n" + ORDERS_SQL,
    "SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id;", "rows", "5")
sql("hard", USERS_SQL, "SELECT country, COUNT(*) FROM users GROUP BY country;", "rows", "3")
sql("easy", ORDERS_SQL, "SELECT SUM(amount) FROM orders WHERE user_id = 1;", "value", "15")

# --- HTTP ----------------------------------------------------------------------
HTTP = "Answer with the 3-digit HTTP status code."
A("easy", f"A client requests a URL for a resource that does not exist on the server. "
  f"Which status code fits? {HTTP}", "404")
A("easy", f"A POST request successfully creates a new resource. Which status code is the most "
  f"specific fit? {HTTP}", "201")
A("medium", f"A request lacks valid authentication credentials (e.g. no or expired token). "
  f"Which status code fits? {HTTP}", "401")
A("medium", f"An authenticated user asks for a resource they are not permitted to access, and "
  f"re-authenticating will not help. Which status code fits? {HTTP}", "403")
A("medium", f"A client has sent too many requests in a given time window (rate limiting). "
  f"Which status code fits? {HTTP}", "429")
A("medium", f"A DELETE succeeds and the server returns no response body. Which status code is "
  f"the most specific fit? {HTTP}", "204")
A("hard", f"A conditional GET with If-None-Match matches the current ETag, so the cached copy "
  f"is still valid. Which status code fits? {HTTP}", "304")
A("hard", f"A reverse proxy receives an invalid response from the upstream server. Which status "
  f"code fits? {HTTP}", "502")
A("hard", f"A resource has permanently moved and the client must repeat the request with the same "
  f"method and body at the new URL. Which status code fits? {HTTP}", "308")

# --- git -----------------------------------------------------------------------
A("easy", "Which git command shows the commit history of the current branch? "
  "Give the command without options.", ["git log"])
A("medium", "Which single git command temporarily shelves uncommitted changes and reverts the "
  "working tree to HEAD? Give the command without options.", ["git stash", "git stash push"])
A("medium", "Which git command applies the changes of one existing commit, abc123, on top of "
  "the current branch as a new commit?", ["git cherry-pick abc123"])
A("medium", "Which single git command creates a new branch named `feature` and switches to it?",
  ["git switch -c feature", "git checkout -b feature", "git switch --create feature"])
A("hard", "Which git command undoes the last commit on the current branch but keeps its changes "
  "staged in the index?",
  ["git reset --soft HEAD~1", "git reset --soft HEAD~", "git reset --soft HEAD^",
   "git reset --soft HEAD^1"])
A("hard", "Which git subcommand performs a binary search through history to find the commit "
  "that introduced a bug? Give just `git <subcommand>`.", ["git bisect"])

# --- data structures / misc ------------------------------------------------------
A("easy", "Which data structure gives last-in, first-out (LIFO) access? One word.", ["stack"])
A("easy", "Which Python standard-library class counts occurrences of hashable items "
  "(a dict subclass)? Give the class name.", ["Counter", "collections.Counter"])
A("easy", "What is the default TCP port for HTTPS?", "443")
A("easy", "How many edges does a tree with 10 nodes have?", "9")
A("easy", "In semantic versioning (MAJOR.MINOR.PATCH), which component must be incremented for a "
  "backward-incompatible API change? One word.", ["major", "MAJOR"])
A("medium", "Which Python standard-library class offers O(1) appends and pops at both ends and "
  "is the usual choice for a FIFO queue? Give the class name.",
  ["deque", "collections.deque"])
A("medium", "Which tree-shaped data structure is designed for fast prefix lookups of strings "
  "(e.g. autocomplete)? One word.", ["trie", "prefix tree"])
A("medium", "What is the default TCP port for PostgreSQL?", "5432")
A("medium", "What is the symbolic (ls -l style) form of Unix file permissions 755 for a regular "
  "file, without the leading file-type character?", ["rwxr-xr-x"])
A("medium", "Which HTTP request header conventionally carries a bearer token, as in "
  "`<Header>: Bearer abc123`? Give the header name.", ["Authorization"])
A("hard", "Which data structure efficiently supports merging sets and asking whether two "
  "elements are in the same set (e.g. in Kruskal's algorithm)?",
  ["union-find", "union find", "disjoint set", "disjoint-set", "disjoint set union", "DSU",
   "disjoint-set union"])
A("hard", "In the worst case, how many array elements does binary search inspect to find a key "
  "or conclude it is absent, in a sorted array of 1000 elements?", "10")

# --- bug spotting -----------------------------------------------------------------
bugline("easy", "`factorial(n)` should return n! but returns the wrong value for n >= 2.", """
    def factorial(n):
        result = 1
        for i in range(1, n):
            result *= i
        return result
    """, 3)
bugline("easy", "`clamp(x, lo, hi)` should limit x to [lo, hi] but gives wrong results.", """
    def clamp(x, lo, hi):
        if x < lo:
            return lo
        if x > hi:
            return lo
        return x
    """, 5)
bugline("easy", "`count_words` raises TypeError on any non-empty text.", """
    def count_words(text):
        counts = {}
        for w in text.split():
            counts[w] = counts.get(w) + 1
        return counts
    """, 4)
bugline("medium", "`average(xs)` crashes for every non-empty list of numbers.", """
    def average(xs):
        total = 0
        for x in xs:
            total += x
        return total / len(x)
    """, 5)
bugline("medium", "`find_max(xs)` returns a wrong answer when all numbers are negative.", """
    def find_max(xs):
        best = 0
        for x in xs:
            if x > best:
                best = x
        return best
    """, 2)
bugline("hard", "`binary_search` on a sorted list fails to find targets that are present, "
        "e.g. binary_search([5], 5) returns -1.", """
    def binary_search(xs, t):
        lo, hi = 0, len(xs) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if xs[mid] == t:
                return mid
            elif xs[mid] < t:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1
    """, 3)
bugline("hard", "`log(msg)` should print the current time with each message, but every call "
        "prints the same timestamp.", """
    import time
    def log(msg, ts=time.time()):
        print(ts, msg)
    """, 2)

ANALYSIS_SYSTEM = "Answer briefly. End your reply with a line `Answer: <answer>`."
ANALYSIS_EXAMPLES = [
    {"prompt": "What is the worst-case time complexity of linear search in an unsorted list "
               "of n elements? Give a big-O bound.",
     "response": "In the worst case every element is checked once.\nAnswer: O(n)"},
    {"prompt": f"{PRINT_Q}\n{py('print(len([1, [2, 3], 4]))')}",
     "response": "The outer list has three elements: 1, [2, 3] and 4.\nAnswer: 3"},
    {"prompt": "Which HTTP status code means the server hit an unexpected condition and could "
               "not fulfil the request? Answer with the 3-digit HTTP status code.",
     "response": "That is the generic server error.\nAnswer: 500"},
]


def make_analysis() -> list[dict]:
    items = []
    for n, q in enumerate(ANALYSIS, 1):
        it = {"id": f"analysis-{n:03d}", "prompt": q["prompt"], "expected": q["expected"],
              "difficulty": q["difficulty"]}
        if "exec" in q:
            it["_exec"] = q["exec"]
        if "sql" in q:
            it["_sql"] = q["sql"]
        items.append(it)
    return items


# ---------------------------------------------------------------------------
# YAML / JSONL writing
# ---------------------------------------------------------------------------

SETS = {
    "math": dict(
        domain="math", scorer="numeric", max_tokens=256, few_shot=2, tolerance=1.0e-6,
        description="Grade-school to early high-school word problems (prices, rates, "
                    "percentages, areas, ages, unit conversions, multi-step); numeric answer.",
        system_prompt="Solve the problem. End your reply with a line `Answer: <number>`.\n"
                      "Give the number only (no units, no currency symbol, no thousands "
                      "separators).\n",
        examples=MATH_EXAMPLES),
    "code": dict(
        domain="code", scorer="code", max_tokens=384, few_shot=2,
        description="Small self-contained Python functions (strings, lists, dicts, math, "
                    "parsing, classic algorithms), checked by running assert tests.",
        system_prompt=CODE_SYSTEM + "\n",
        examples=CODE_EXAMPLES),
    "analysis": dict(
        domain="analysis", scorer="analysis", max_tokens=128, few_shot=2,
        description="Short software-engineering reasoning: complexity, Python output, HTTP, "
                    "git, SQL, data structures, bug spotting; one short exact answer.",
        system_prompt=ANALYSIS_SYSTEM + "\n",
        examples=ANALYSIS_EXAMPLES),
}


def yaml_scalar(s: str, indent: int) -> str:
    """A YAML scalar for `s`: block literal for multi-line text, JSON-style quoted otherwise."""
    if "\n" in s.rstrip("\n") or s.endswith("\n"):
        if s[:1] in (" ", "\t") or "\t" in s or any(ln != ln.rstrip() for ln in s.splitlines()):
            return json.dumps(s, ensure_ascii=False)
        chomp = "" if s.endswith("\n") and not s.endswith("\n\n") else "-"
        if s.endswith("\n\n"):
            return json.dumps(s, ensure_ascii=False)
        pad = " " * (indent + 2)
        body = "\n".join(pad + ln if ln else "" for ln in s.rstrip("\n").split("\n"))
        return f"|{chomp}\n{body}"
    return json.dumps(s, ensure_ascii=False)


def render_yaml(name: str, meta: dict) -> str:
    out = [f"name: {name}", "version: 1", f"domain: {meta['domain']}",
           f"scorer: {meta['scorer']}",
           f"description: {yaml_scalar(meta['description'], 0)}",
           f"system_prompt: {yaml_scalar(meta['system_prompt'], 0)}",
           f"few_shot: {meta['few_shot']}",
           f"max_tokens: {meta['max_tokens']}"]
    if meta["scorer"] == "numeric":
        out.append("tolerance: 1.0e-6")
    out.append("examples:")
    for ex in meta["examples"]:
        out.append(f"  - prompt: {yaml_scalar(ex['prompt'], 4)}")
        out.append(f"    response: {yaml_scalar(ex['response'], 4)}")
    return "\n".join(out) + "\n"


def public(item: dict) -> dict:
    keys = ["id", "prompt", "expected", "difficulty"] + (["tests"] if "tests" in item else [])
    return {k: item[k] for k in keys}


def render_jsonl(items: list[dict]) -> str:
    return "".join(json.dumps(public(it), ensure_ascii=False) + "\n" for it in items)


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

CODE_HARNESS = r"""
import json, sys
item = json.loads(sys.stdin.read())
fails = []
ns = {}
exec(item["expected"], ns)
for t in item["tests"]:
    try:
        exec(t, ns)
    except Exception as e:
        fails.append(f"{t!r}: {type(e).__name__}: {e}")
stub_ns = {}
exec(item["stub"], stub_ns)
stub_fail = 0
for t in item["tests"]:
    try:
        exec(t, stub_ns)
    except Exception:
        stub_fail += 1
print(json.dumps({"fails": fails, "stub_fail": stub_fail}))
"""


def run_py(code: str, stdin: str = "", hashseed: str = "0", timeout: float = 30) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONIOENCODING="utf-8")
    res = subprocess.run([sys.executable, "-I", "-c", code], input=stdin, capture_output=True,
                         text=True, timeout=timeout, env=env, encoding="utf-8")
    if res.returncode != 0:
        raise EvalError(f"subprocess failed ({res.returncode}): {res.stderr.strip()[-800:]}")
    return res.stdout


def check_common(name: str, items: list[dict], errors: list[str]) -> None:
    ids = [it["id"] for it in items]
    if len(set(ids)) != len(ids):
        errors.append(f"{name}: duplicate ids")
    for i, it in enumerate(items, 1):
        if it["id"] != f"{name}-{i:03d}":
            errors.append(f"{it['id']}: ids must be {name}-001... in order")
        if it["difficulty"] not in DIFFS:
            errors.append(f"{it['id']}: bad difficulty {it['difficulty']!r}")
        if not it["prompt"].strip() or len(it["prompt"]) >= MAX_PROMPT:
            errors.append(f"{it['id']}: prompt empty or >= {MAX_PROMPT} chars ({len(it['prompt'])})")
    prompts = [it["prompt"] for it in items]
    if len(set(prompts)) != len(prompts):
        errors.append(f"{name}: duplicate prompts")
    if len(items) < 60:
        errors.append(f"{name}: only {len(items)} items (need >= 60)")
    counts = Counter(it["difficulty"] for it in items)
    for d in DIFFS:
        share = counts[d] / max(len(items), 1)
        if not 0.25 <= share <= 0.42:
            errors.append(f"{name}: difficulty {d} share {share:.2f} is not roughly 1/3")


def validate_math(items: list[dict], errors: list[str]) -> None:
    templates = Counter(it["_template"] for it in items)
    if len(templates) < 15:
        errors.append(f"math: only {len(templates)} templates used")
    for it in items:
        e = it["expected"]
        if isinstance(e, bool) or not isinstance(e, (int, float)):
            errors.append(f"{it['id']}: expected must be a number")
        elif isinstance(e, float) and (round(e, 2) != e or e == int(e)):
            errors.append(f"{it['id']}: float expected {e} must have 1-2 decimals")


def validate_code(items: list[dict], errors: list[str]) -> None:
    names = set()
    for it in items:
        sig = it["_signature"]
        fname = sig.split("(")[0].removeprefix("def ").strip()
        names.add(fname)
        if f"`{sig}`" not in it["prompt"]:
            errors.append(f"{it['id']}: prompt must name the signature")
        if not 3 <= len(it["tests"]) <= 6:
            errors.append(f"{it['id']}: needs 3-6 tests, has {len(it['tests'])}")
        try:
            tree = ast.parse(it["expected"])
        except SyntaxError as exc:
            errors.append(f"{it['id']}: reference does not parse: {exc}")
            continue
        if (len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef)
                or tree.body[0].name != fname or not it["expected"].startswith(sig + ":")):
            errors.append(f"{it['id']}: reference must be exactly one `{sig}:` def")
        for t in it["tests"]:
            try:
                body = ast.parse(t).body
                if len(body) != 1 or not isinstance(body[0], ast.Assert):
                    errors.append(f"{it['id']}: test is not one plain assert: {t!r}")
            except SyntaxError as exc:
                errors.append(f"{it['id']}: test does not parse: {t!r}: {exc}")
            if fname not in t:
                errors.append(f"{it['id']}: test does not call {fname}: {t!r}")
        stub = f"def {fname}(*args, **kwargs):\n    return None\n"
        payload = json.dumps({"expected": it["expected"], "tests": it["tests"], "stub": stub})
        try:
            res = json.loads(run_py(CODE_HARNESS, payload))
        except (EvalError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{it['id']}: harness error: {exc}")
            continue
        for f in res["fails"]:
            errors.append(f"{it['id']}: reference FAILS test {f}")
        if res["stub_fail"] == 0:
            errors.append(f"{it['id']}: tests pass against a do-nothing stub")
    if len(names) != len(items):
        errors.append("code: function names are not distinct")


def validate_analysis(items: list[dict], errors: list[str]) -> None:
    for it in items:
        e = it["expected"]
        variants = e if isinstance(e, list) else [e]
        if not variants or not all(isinstance(v, str) and v.strip() and len(v) <= 40
                                   for v in variants):
            errors.append(f"{it['id']}: expected must be short non-empty string(s)")
        if "_exec" in it:
            outs = set()
            for seed in ("0", "12345"):
                try:
                    outs.add(run_py(it["_exec"], hashseed=seed).strip())
                except (EvalError, subprocess.TimeoutExpired) as exc:
                    errors.append(f"{it['id']}: snippet error: {exc}")
            if len(outs) > 1:
                errors.append(f"{it['id']}: snippet output is not deterministic: {outs}")
            elif outs and outs != {variants[0]}:
                errors.append(f"{it['id']}: snippet prints {outs.pop()!r}, expected {variants[0]!r}")
            if "```python\n" + it["_exec"] + "```" not in it["prompt"]:
                errors.append(f"{it['id']}: executed code differs from the prompt's code")
        if "_sql" in it:
            setup, query, mode = it["_sql"]
            con = sqlite3.connect(":memory:")
            con.executescript(setup)
            rows = con.execute(query).fetchall()
            con.close()
            got = str(len(rows)) if mode == "rows" else str(rows[0][0])
            if got != variants[0]:
                errors.append(f"{it['id']}: SQL gives {got}, expected {variants[0]}")


def validate_files(name: str, meta: dict, items: list[dict], errors: list[str]) -> None:
    """Re-read the written files and check they match the in-memory sets."""
    ytext = (EVALS / f"{name}.yaml").read_text(encoding="utf-8")
    jtext = (EVALS / f"{name}.jsonl").read_text(encoding="utf-8")
    if ytext != render_yaml(name, meta):
        errors.append(f"{name}.yaml is stale (re-run without --check)")
    if jtext != render_jsonl(items):
        errors.append(f"{name}.jsonl is stale (re-run without --check)")
    for ln, line in enumerate(jtext.splitlines(), 1):
        obj = json.loads(line)
        want = {"id", "prompt", "expected", "difficulty"} | ({"tests"} if name == "code" else set())
        if set(obj) != want:
            errors.append(f"{name}.jsonl:{ln}: keys {sorted(obj)} != {sorted(want)}")
    try:
        import yaml  # optional: only used to prove the hand-written YAML parses as intended
    except ImportError:
        return
    doc = yaml.safe_load(ytext)
    want_keys = ["name", "version", "domain", "scorer", "description", "system_prompt",
                 "few_shot", "max_tokens"] + (["tolerance"] if meta["scorer"] == "numeric" else []) \
        + ["examples"]
    if list(doc) != want_keys:
        errors.append(f"{name}.yaml: keys {list(doc)} != {want_keys}")
    if doc.get("name") != name or doc.get("system_prompt") != meta["system_prompt"] \
            or doc.get("examples") != meta["examples"] or doc.get("description") != meta["description"]:
        errors.append(f"{name}.yaml does not round-trip")
    if meta["scorer"] == "numeric" and doc.get("tolerance") != 1.0e-6:
        errors.append(f"{name}.yaml: tolerance does not parse as 1e-6")


def validate_examples(name: str, meta: dict, items: list[dict], errors: list[str]) -> None:
    prompts = {it["prompt"] for it in items}
    exs = meta["examples"]
    if not 2 <= len(exs) <= 3 or meta["few_shot"] > len(exs):
        errors.append(f"{name}: needs 2-3 examples and few_shot <= len(examples)")
    for ex in exs:
        if ex["prompt"] in prompts:
            errors.append(f"{name}: example prompt is also an item: {ex['prompt'][:60]!r}")
        if name == "code":
            if not (ex["response"].startswith("```python\n") and ex["response"].endswith("\n```")):
                errors.append(f"{name}: example response must be one ```python block")
        elif not ex["response"].splitlines()[-1].startswith("Answer: "):
            errors.append(f"{name}: example response must end with an `Answer:` line")
    if name == "code":
        fnames = {it["_signature"].split("(")[0] for it in items}
        for ex in exs:
            if ex["prompt"].split("`")[1].split("(")[0] in fnames:
                errors.append(f"{name}: example function is also an item")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="validate existing files only")
    args = ap.parse_args()

    builders = {"math": make_math, "code": make_code, "analysis": make_analysis}
    validators = {"math": validate_math, "code": validate_code, "analysis": validate_analysis}
    errors: list[str] = []
    EVALS.mkdir(exist_ok=True)
    for name, build in builders.items():
        meta = SETS[name]
        items = build()
        if not args.check:
            (EVALS / f"{name}.yaml").write_text(render_yaml(name, meta), encoding="utf-8")
            (EVALS / f"{name}.jsonl").write_text(render_jsonl(items), encoding="utf-8")
        errs: list[str] = []
        check_common(name, items, errs)
        validators[name](items, errs)
        validate_examples(name, meta, items, errs)
        validate_files(name, meta, items, errs)
        counts = Counter(it["difficulty"] for it in items)
        status = "OK" if not errs else f"{len(errs)} ERROR(S)"
        print(f"{name:9s} {len(items):3d} items  "
              + "  ".join(f"{d}={counts[d]}" for d in DIFFS) + f"  [{status}]")
        errors.extend(errs)
    if errors:
        print("\nVALIDATION FAILED:", file=sys.stderr)
        for e in errors:
            print("  - " + e, file=sys.stderr)
        return 1
    print("all sets valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
