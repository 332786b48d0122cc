-- Replicas on one database (issue #24): a KnowledgeBase/Reload through any
-- replica bumps `generation`; every replica polls this row and reloads its
-- own knowledge-base folder when the generation moves on.
CREATE TABLE kb_reloads (
    id BIGINT PRIMARY KEY,
    generation BIGINT NOT NULL,
    version TEXT NOT NULL,
    at BIGINT NOT NULL
);
INSERT INTO kb_reloads (id, generation, version, at) VALUES (1, 0, '', 0);
