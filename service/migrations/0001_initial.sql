-- One schema for SQLite (embedded default) and PostgreSQL (scale-out):
-- only types and syntax both understand; times are unix milliseconds.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    shop_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE turns (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    intent TEXT NOT NULL,
    sentiment BIGINT NOT NULL,
    anger DOUBLE PRECISION NOT NULL,
    action BIGINT NOT NULL,
    articles TEXT NOT NULL,
    client_turn_id TEXT,
    response TEXT,
    at BIGINT NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX turns_client_turn ON turns (conversation_id, client_turn_id) WHERE client_turn_id IS NOT NULL;

CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    reason BIGINT NOT NULL,
    status BIGINT NOT NULL,
    queue TEXT NOT NULL,
    priority BIGINT NOT NULL,
    summary TEXT NOT NULL,
    kb_articles_tried TEXT NOT NULL,
    suggested_replies TEXT NOT NULL,
    entities TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at BIGINT,
    resolution TEXT NOT NULL,
    resolved_at BIGINT
);
-- At most one open (waiting or claimed) handoff per conversation.
CREATE UNIQUE INDEX handoffs_one_open ON handoffs (conversation_id) WHERE status <> 3;
CREATE INDEX handoffs_queue ON handoffs (status, queue, created_at);

CREATE TABLE feedback (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    suggestion_text TEXT NOT NULL,
    verdict TEXT NOT NULL,
    edited_text TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    outcome TEXT NOT NULL
);
