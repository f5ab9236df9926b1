"""The database schema, as named migrations. Never edit a released migration: add a new one."""

from sqlite_utils.migrations import Migrations

migrations = Migrations("sinkin_pipeline")

#: the configs columns as m001 created them. Released migrations are frozen: this is NOT derived
#: from fields.FIELDS on purpose (a field added later gets its column from a new migration, and
#: ranking.build/build_values pick it up from FIELDS).
CONFIG_COLUMNS = {
    "model_id": str,
    "prompt": str,
    "negative_prompt": str,
    "use_default_neg": int,
    "width": int,
    "height": int,
    "steps": int,
    "scale": float,
    "num_images": int,
    "seed": int,
    "scheduler": str,
    "lora": str,
    "lora_scale": float,
    "lcm": int,
    "version": str,
    "image_strength": float,
    "controlnet": str,
}


@migrations()
def m001_initial(db):
    db["runs"].create(
        {
            "id": int,
            "name": str,
            "provider": str,
            "spec": str,
            "spec_yaml": str,
            "resolved": str,
            "request_key": str,
            "created_at": str,
        },
        pk="id",
    )
    db["runs"].create_index(["request_key"], unique=True)
    db["assets"].create(
        {
            "id": int,
            "sha256": str,
            "filename": str,
            "path": str,
            "width": int,
            "height": int,
            "bytes": int,
            "created_at": str,
        },
        pk="id",
    )
    db["assets"].create_index(["sha256"], unique=True)
    db["configs"].create(
        {
            "id": int,
            "run_id": int,
            **CONFIG_COLUMNS,
            "init_asset_id": int,
            "fallback_enabled": int,
            "position": int,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("init_asset_id", "assets", "id")],
    )
    db["configs"].create_index(["run_id"])
    db["images"].create(
        {
            "id": int,
            "run_id": int,
            "config_id": int,
            "job_id": int,
            "image_index": int,
            "inf_id": str,
            "url": str,
            "path": str,
            "thumbnail": bytes,
            "width": int,
            "height": int,
            "score": int,
            "scored_at": str,
            "upscale_url": str,
            "upscale_path": str,
            "upscale_type": str,
            "upscale_job_id": int,
            "download_error": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("config_id", "configs", "id")],
    )
    db["jobs"].create(
        {
            "id": int,
            "run_id": int,
            "config_id": int,
            "image_id": int,
            "kind": str,
            "status": str,
            "provider": str,
            "credit_estimate": float,
            "credit_cost": float,
            "inf_id": str,
            "raw_payload": str,
            "raw_response": str,
            "options": str,
            "error": str,
            "fallback": int,
            "attempts": int,
            "worker_pid": int,
            "worker_host": str,
            "created_at": str,
            "started_at": str,
            "response_at": str,
            "finished_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("config_id", "configs", "id"), ("image_id", "images", "id")],
        defaults={"status": "queued", "attempts": 0, "fallback": 0},
    )
    db["jobs"].create_index(["status", "id"])
    db["jobs"].create_index(["run_id"])
    # images.job_id and upscale_job_id reference jobs (added after jobs exists)
    db["images"].add_foreign_key("job_id", "jobs", "id")
    db["images"].add_foreign_key("upscale_job_id", "jobs", "id")
    db["images"].create_index(["job_id", "image_index"], unique=True)
    db["images"].create_index(["run_id", "id"])
    db["images"].create_index(["score"])
    db["models"].create(
        {
            "id": str,
            "title": str,
            "kind": str,
            "cover_img": str,
            "link": str,
            "fetched_at": str,
        },
        pk="id",
    )
    db.execute(RUN_SUMMARY_SQL)
    db.execute(IMAGE_TABLE_SQL)


@migrations()
def m002_job_priority(db):
    """``jobs.priority``: claimed highest first, then oldest first (the dashboard's "to the front")."""
    db.execute("alter table jobs add column priority integer not null default 0")
    db.execute("create index jobs_claim_order on jobs (status, priority desc, id)")


@migrations()
def m003_ranking_table(db):
    """image_table becomes a table kept in step by triggers (indexed for the gallery, Datasette's facets,
    sorts and keyset CSV streaming); run_stats counts each run's images and jobs (run_summary reads it);
    jobs are indexed by finish time for the dashboard's recent list."""
    from .ranking import build

    build(db)
    db.execute("create index if not exists jobs_finished on jobs (finished_at, id)")


@migrations()
def m004_ranking_facet_indexes(db):
    """Covering indexes for the ranking table's default facets within a run (run_id, facet)."""
    from .ranking import ensure_indexes

    ensure_indexes(db)


@migrations()
def m005_run_values(db):
    """run_values: per run, setting and value, how many images (the gallery's filter menus without
    a scan of the run); run_stats.config_version for caches of what depends on the configs."""
    from .ranking import build_values

    build_values(db)


@migrations()
def m006_job_leases(db):
    """``jobs.lease_owner`` / ``lease_expires``: a running job belongs to the worker session that
    keeps renewing its lease (a heartbeat); once the lease has run out the job is stale wherever it
    ran. ``jobs.output_path``: the file an upscale job saved (kept even when a later upscale of the
    same image is the one the image shows)."""
    db.execute("alter table jobs add column lease_owner text")
    db.execute("alter table jobs add column lease_expires real")
    db.execute("alter table jobs add column output_path text")


@migrations()
def m007_plugin_contract(db):
    """Provider-declared options on each config (JSON), the seed a provider reports per image, and
    the errors plugin hooks raised (logged against the image; they never fail a job)."""
    db["configs"].add_column("provider_options", str)
    db["images"].add_column("provider_seed", int)
    db["plugin_errors"].create(
        {
            "id": int,
            "image_id": int,
            "job_id": int,
            "plugin": str,
            "hook": str,
            "error": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("image_id", "images", "id"), ("job_id", "jobs", "id")],
    )
    db["plugin_errors"].create_index(["image_id"])


@migrations()
def m008_model_catalogues(db):
    """``models.catalogue``: each provider's catalogue keeps its own cached list (rows cached
    before are SinkIn's ids: the simulator mirrors them)."""
    db.execute("alter table models add column catalogue text not null default 'sinkin'")
    db.execute("create index if not exists idx_models_catalogue on models (catalogue, kind)")


RUN_SUMMARY_SQL = """
create view run_summary as
select
  runs.id as run_id,
  runs.name as name,
  runs.provider as provider,
  runs.created_at as created_at,
  (select count(*) from images where images.run_id = runs.id) as total,
  (select count(*) from images where images.run_id = runs.id and images.score is null) as unrated,
  (select count(*) from images where images.run_id = runs.id and images.upscale_path is not null) as upscaled,
  (select count(*) from jobs where jobs.run_id = runs.id and jobs.kind = 'inference') as jobs,
  (select count(*) from jobs where jobs.run_id = runs.id and jobs.status = 'queued') as queued,
  (select count(*) from jobs where jobs.run_id = runs.id and jobs.status = 'running') as running,
  (select count(*) from jobs where jobs.run_id = runs.id and jobs.status = 'succeeded') as succeeded,
  (select count(*) from jobs where jobs.run_id = runs.id and jobs.status = 'failed') as failed,
  (select count(*) from jobs where jobs.run_id = runs.id and jobs.status = 'interrupted') as interrupted,
  (select count(*) from jobs where jobs.run_id = runs.id and jobs.status = 'cancelled') as cancelled,
  (select coalesce(sum(credit_cost), 0) from jobs where jobs.run_id = runs.id) as credits,
  (select coalesce(sum(credit_estimate), 0) from jobs where jobs.run_id = runs.id
     and jobs.status in ('queued', 'running')) as credits_pending
from runs
"""

IMAGE_TABLE_SQL = """
create view image_table as
select
  images.id as image_id,
  images.thumbnail as thumbnail,
  images.score as score,
  images.run_id as run_id,
  runs.name as run_name,
  configs.model_id as model_id,
  (select title from models where models.id = configs.model_id) as model_title,
  configs.prompt as prompt,
  configs.negative_prompt as negative_prompt,
  configs.use_default_neg as use_default_neg,
  configs.width as width,
  configs.height as height,
  configs.steps as steps,
  configs.scale as scale,
  configs.num_images as num_images,
  configs.seed as seed,
  configs.scheduler as scheduler,
  configs.lora as lora,
  configs.lora_scale as lora_scale,
  configs.lcm as lcm,
  configs.version as version,
  configs.image_strength as image_strength,
  configs.controlnet as controlnet,
  configs.init_asset_id as init_asset_id,
  jobs.fallback as fallback,
  images.config_id as config_id,
  images.job_id as job_id,
  images.inf_id as inf_id,
  images.path as path,
  images.url as url,
  images.upscale_type as upscale_type,
  images.upscale_path as upscale_path,
  images.scored_at as scored_at,
  images.created_at as created_at
from images
join configs on configs.id = images.config_id
join runs on runs.id = images.run_id
left join jobs on jobs.id = images.job_id
"""
