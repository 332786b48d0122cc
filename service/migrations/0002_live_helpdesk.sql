-- The human half (issue #22): agent turns, handoff due times and the event
-- log that feeds WatchHandoffs and WatchConversation on every replica.

-- Who wrote an agent turn ('' for shopper and bot turns).
ALTER TABLE turns ADD COLUMN agent_id TEXT NOT NULL DEFAULT '';
-- When an agent should have answered (unix ms; 0 for handoffs made before).
ALTER TABLE handoffs ADD COLUMN due_at BIGINT NOT NULL DEFAULT 0;

-- One row per thing a watcher may need to hear about: a turn recorded, a
-- handoff created, claimed or resolved. `seq` is the cursor. Every writer
-- takes the next numbers from the single `event_clock` row inside its own
-- transaction, as its last statement, so the row lock orders commits: an
-- event with a higher seq can never become visible before a lower one (the
-- out-of-order commit problem of plain sequences), and a reader that has
-- seen seq N has seen everything up to N.
CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    kind BIGINT NOT NULL,
    conversation_id TEXT NOT NULL,
    handoff_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    turn_seq BIGINT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX events_conversation ON events (conversation_id, seq);
CREATE INDEX events_at ON events (at);

-- last_seq: the newest event number handed out; pruned_through: events up
-- to this number were dropped by retention, so older cursors are refused.
CREATE TABLE event_clock (
    id BIGINT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    pruned_through BIGINT NOT NULL
);
INSERT INTO event_clock (id, last_seq, pruned_through) VALUES (1, 0, 0);
