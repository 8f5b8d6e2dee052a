"""An application's names never share the runtime's (runtime/actions.py,
runtime/registry.py): an action, consumer or workflow named like an attribute of
collab's actor classes is refused when the class is defined or registered, with
the name and why, and so is a plain attribute that replaces the runtime's own;
the hooks stay overridable. `collab serve --app` says so in one line."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import collab
from collab.runtime.actions import OVERRIDABLE, runtime_names
from tests.waits import TIMEOUT

#: Every runtime name but Python's own dunders (no one defines `__dict__` as an action).
NAMES = sorted(name for name in runtime_names() if not name.startswith("__"))
#: An action `kind` fails earlier, in Actor.__init_subclass__ (a method is no kind name).
ACTION_NAMES = sorted(set(NAMES) - {"kind"})


def test_the_names_come_from_the_runtime_classes():
    names = runtime_names()
    # methods of ActorBase and Actor, what they set on self, and the timers' methods
    for name in ("_save", "handle", "_load", "post", "submit", "_persist", "state", "schedule",
                 "conn", "key", "system", "_mailbox", "_drain_queue", "_resume_workflow"):
        assert name in names, name
    assert "collab.runtime.actor.Actor" in names["_save"]


@pytest.mark.parametrize("name", ["save", "load", "reject", "after_drain", "can_hibernate"])
def test_names_the_mailbox_calls_are_free_for_actions(name):
    """The hooks the mailbox calls are underscored: an action may be named `save`."""
    def method(self) -> str:
        return name

    cls = type("Free", (collab.Actor,), {name: collab.action(method)})
    assert name not in runtime_names()
    collab.Registry(cls)  # accepted


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_an_action_with_a_runtime_name_is_refused_when_the_class_is_defined(name):
    def method(self) -> None: ...

    with pytest.raises(ValueError, match=rf"may not be named '{name}'.*runtime uses"):
        type("Clashing", (collab.Actor,), {name: collab.action(method)})


@pytest.mark.parametrize("name", ["handle", "_save", "_load", "post", "_call"])
def test_a_consumer_with_a_runtime_name_is_refused_when_the_class_is_defined(name):
    def method(self, message) -> None: ...

    with pytest.raises(ValueError, match=rf"@collab.consumes may not be named '{name}'"):
        type("Clashing", (collab.Actor,), {name: collab.consumes("jobs")(method)})


def test_a_workflow_with_a_runtime_name_is_refused_by_the_registry():
    class Clashing(collab.Actor):
        @collab.workflow
        async def submit(self, ctx) -> None: ...

    with pytest.raises(ValueError, match=r"@collab.workflow may not be named 'submit'"):
        collab.Registry(Clashing)


@pytest.mark.parametrize("name", sorted(set(NAMES) - OVERRIDABLE - {"_actions", "_consumers",
                                                                    "_workflow_methods"}))
def test_a_plain_attribute_replacing_the_runtimes_is_refused_by_the_registry(name):
    clashing = type("Clashing", (collab.Actor,), {name: lambda self: None})
    with pytest.raises(ValueError, match=rf"Clashing.{name} replaces the runtime's own"):
        collab.Registry(clashing)


def test_hooks_and_settings_stay_overridable():
    class Fine(collab.Actor):
        kind = "fine"
        inboxes = ("approvals",)
        queue_max_length = 5

        def initial_state(self) -> dict:
            return {}

        async def on_wake(self) -> None: ...

        async def on_connect(self, conn) -> None: ...

        def handle(self, message):
            return super().handle(message)

        def __repr__(self) -> str:
            return "fine"

    class FineRoom(collab.Room):
        kind = "fine-room"
        MAX_BODY_BYTES = 100

        def handle(self, message):
            return super().handle(message)

    collab.Registry(Fine, FineRoom)


def test_collab_serve_refuses_the_app_in_one_line(tmp_path):
    (tmp_path / "clash_app.py").write_text(textwrap.dedent("""
        import collab

        class Mailer(collab.Actor):
            @collab.consumes("outbox")
            def handle(self, message):
                pass

        registry = collab.Registry(Mailer)
    """))
    done = subprocess.run(
        [sys.executable, "-m", "collab", "serve", "--port", "0", "--app", "clash_app:registry",
         "--database-url", f"sqlite:///{tmp_path}/c.db"],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "collab: Mailer.handle: @collab.consumes may not be named 'handle', a name collab's "
        "runtime uses (collab.runtime.actor.Actor); rename it")
