-- Shoppers' ratings of bot answers, as the storefront reports them (issue
-- #23): one per bot turn, a second rating replaces the first. The comment
-- is masked like every stored text.
CREATE TABLE ratings (
    conversation_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    rating BIGINT NOT NULL,
    comment TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, turn_id)
);
CREATE INDEX ratings_at ON ratings (at);
