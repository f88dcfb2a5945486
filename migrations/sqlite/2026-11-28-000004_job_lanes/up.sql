-- A job's lane: jobs in a lane are claimed only by a claimer that asks for that lane (the
-- webhook pump asks per endpoint, for as many as the endpoint can take). A dead endpoint's
-- backlog then never sits in front of the jobs of endpoints that answer.
ALTER TABLE jobs ADD COLUMN lane TEXT;

UPDATE jobs SET lane = (SELECT d.endpoint_id FROM deliveries d WHERE d.id = jobs.dedupe_key)
WHERE kind = 'webhook.deliver' AND state IN ('queued', 'running');

-- per lane, in due order: the pump's claims and the distinct-lane skip scan
CREATE INDEX jobs_lane_due ON jobs (lane, run_at)
    WHERE state = 'queued' AND lane IS NOT NULL;
-- per kind, in due order, for jobs outside lanes (the generic runner's claims)
CREATE INDEX jobs_kind_due ON jobs (kind, run_at)
    WHERE state = 'queued' AND lane IS NULL;
