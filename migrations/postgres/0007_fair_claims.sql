-- Claims count each tenant's running jobs: an index over running jobs by tenant.
CREATE INDEX jobs_running_tenant ON jobs (status, tenant_id);
