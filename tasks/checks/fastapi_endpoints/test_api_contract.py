"""The harness's hidden tests of the fastapi_endpoints task (the agent never sees this file): the contract the prompt
states, through FastAPI's TestClient, with the language model stubbed."""

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from lighthearted.api import create_app

VALUES = "What are some of your most important values?"
MORNING = "What motivates you to wake up in the morning?"


class Stub:
    def __init__(self, questions=("Why is that?", "What helps?")):
        self.questions, self.calls = list(questions), []

    def __call__(self, init_question, human_answer):
        self.calls.append((init_question, human_answer))
        return list(self.questions)


@pytest.fixture
def stub():
    return Stub()


@pytest.fixture
def client(stub):
    return TestClient(create_app(stub))


def start(client):
    r = client.post("/conversations")
    assert r.status_code == 201, r.text
    body = r.json()
    assert isinstance(body["id"], str) and body["id"]
    return body


def say(client, cid, text):
    r = client.post(f"/conversations/{cid}/messages", json={"content": text})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_new_conversation_opens_with_the_welcome(client):
    body = start(client)
    assert [m["role"] for m in body["messages"]] == ["ai"]
    assert "Welcome to lighthearted!" in body["messages"][0]["content"]


def test_the_flow_is_the_apps_follow_ups_then_the_next_fixed_question(client, stub):
    cid = start(client)["id"]
    first = say(client, cid, "I feel stressed")
    assert first["reply"] == "Why is that?"
    assert len(stub.calls) == 1 and "Welcome to lighthearted!" in stub.calls[0][0]
    assert stub.calls[0][1] == "I feel stressed"
    assert say(client, cid, "work")["reply"] == "What helps?"
    assert say(client, cid, "walks")["reply"] == VALUES
    assert len(stub.calls) == 1
    assert say(client, cid, "honesty")["reply"] == "Why is that?"
    assert stub.calls[1] == (VALUES, "honesty")
    say(client, cid, "a")
    assert say(client, cid, "b")["reply"] == MORNING
    messages = client.get(f"/conversations/{cid}").json()["messages"]
    assert [m["role"] for m in messages] == ["ai"] + ["human", "ai"] * 6
    assert [m["content"] for m in messages if m["role"] == "human"] == ["I feel stressed", "work", "walks", "honesty",
                                                                           "a", "b"]


def test_conversations_are_independent(client):
    a, b = start(client)["id"], start(client)["id"]
    assert a != b
    say(client, a, "x")
    assert len(client.get(f"/conversations/{b}").json()["messages"]) == 1
    assert len(client.get(f"/conversations/{a}").json()["messages"]) == 3


def test_unknown_ids_are_404_and_an_empty_answer_is_422(client):
    assert client.get("/conversations/no-such-id").status_code == 404
    assert client.post("/conversations/no-such-id/messages", json={"content": "x"}).status_code == 404
    assert client.delete("/conversations/no-such-id").status_code == 404
    cid = start(client)["id"]
    assert client.post(f"/conversations/{cid}/messages", json={"content": ""}).status_code == 422
    assert client.post(f"/conversations/{cid}/messages", json={}).status_code == 422


def test_delete_ends_a_conversation(client):
    cid = start(client)["id"]
    assert client.delete(f"/conversations/{cid}").status_code == 204
    assert client.get(f"/conversations/{cid}").status_code == 404


def test_by_default_the_follow_ups_come_from_the_dspy_program():
    import dspy
    from dspy.utils.dummies import DummyLM

    dspy.configure(lm=DummyLM([{"reasoning": "r", "follow_up_question": '["From the LM?", "Another?"]'}]))
    client = TestClient(create_app())
    cid = start(client)["id"]
    assert say(client, cid, "hello")["reply"] == "From the LM?"


def test_the_api_does_not_need_the_streamlit_front_end():
    code = "import sys; sys.modules['streamlit'] = None; import lighthearted.api; lighthearted.api.create_app()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-800:]
