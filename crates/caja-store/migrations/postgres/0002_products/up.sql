-- The catalog. Rows are archived, never deleted, so history keeps its meaning.
CREATE TABLE products (
    id           TEXT PRIMARY KEY,
    sku          TEXT NOT NULL,
    name         TEXT NOT NULL,
    price_amount BIGINT NOT NULL CHECK (price_amount >= 0),
    currency     TEXT NOT NULL,
    stock        BIGINT NOT NULL CHECK (stock >= 0),
    version      BIGINT NOT NULL,
    archived_at  TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- An sku names one live product; an archived product frees its sku.
CREATE UNIQUE INDEX products_live_sku ON products (sku) WHERE archived_at IS NULL;
