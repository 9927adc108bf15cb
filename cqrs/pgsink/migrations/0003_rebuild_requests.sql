-- Rebuild requests, served by Sink.ServeRebuilds rather than by the
-- projection's runner; a rebuild being carried out is 'running'.
ALTER TABLE {{schema}}.projection_requests
    DROP CONSTRAINT projection_requests_action_check,
    ADD CONSTRAINT projection_requests_action_check CHECK (action IN ('reset', 'replay', 'rebuild')),
    DROP CONSTRAINT projection_requests_state_check,
    ADD CONSTRAINT projection_requests_state_check CHECK (state IN ('pending', 'running', 'done', 'failed'));
