-- What runners report and what tools ask of them. The esgen binary cannot
-- run an app's projection code, so `esgen projections` reads
-- projection_status and writes projection_requests, and the runner holding
-- a projection carries its requests out.

-- The latest status reported by the runner holding each projection.
CREATE TABLE {{schema}}.projection_status (
    projection    text        PRIMARY KEY,
    state         text        NOT NULL,
    event_types   text[]      NOT NULL,
    handled       bigint      NOT NULL,
    parked        bigint      NOT NULL,
    last_error    text        NOT NULL,
    last_error_at timestamptz,
    owner         text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Requests, oldest first. state: pending, done or failed.
CREATE TABLE {{schema}}.projection_requests (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection   text        NOT NULL,
    action       text        NOT NULL CHECK (action IN ('reset', 'replay')),
    from_commit  bigint      NOT NULL DEFAULT 0,
    from_prepare bigint      NOT NULL DEFAULT 0,
    state        text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    error        text        NOT NULL DEFAULT '',
    requested_by text        NOT NULL DEFAULT '',
    requested_at timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX projection_requests_pending ON {{schema}}.projection_requests (projection, id) WHERE state = 'pending';
