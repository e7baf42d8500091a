//! Group commit for the SQLite store.
//!
//! With `synchronous=FULL` every COMMIT costs an fsync, and one writer connection can only
//! commit one transaction at a time. So writes are jobs sent to one writer task, which runs
//! whatever has queued up inside a single transaction, each job in a savepoint of its own (a
//! job whose guard fails rolls back only itself), commits once, and only then answers every
//! job: no write is acknowledged before the fsync that makes it durable.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::sqlite::SqlitePool;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::store::{StoreError, StoreResult};

/// Answers a job's caller, given how its batch's commit went.
type Reply = Box<dyn FnOnce(&StoreResult<()>) + Send>;
/// What a job's future returns to the writer: whether it succeeded (keep its savepoint), and
/// its reply.
type Ran = (bool, Reply);
type JobFuture<'c> = Pin<Box<dyn Future<Output = Ran> + Send + 'c>>;
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> JobFuture<'c> + Send>;

/// A job's work: statements on the writer connection, inside the batch's transaction.
pub type WorkFuture<'c, R> = Pin<Box<dyn Future<Output = StoreResult<R>> + Send + 'c>>;

/// Jobs per transaction at most, so one commit never waits on an unbounded batch.
const MAX_BATCH: usize = 256;
/// Jobs waiting for the writer at most; a sender beyond that waits up to the acquire timeout.
const QUEUE: usize = 4096;

pub struct Writer {
    jobs: mpsc::Sender<Job>,
    pool: SqlitePool,
    admission: Duration,
}

impl Writer {
    /// Starts the writer task on `pool` (one connection). The task ends once the `Writer` is
    /// dropped and the queue is drained.
    pub fn start(pool: SqlitePool, admission: Duration) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool.clone(), queue));
        Self {
            jobs,
            pool,
            admission,
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs `work` in the next batch; answers after that batch's transaction is committed
    /// (durably), or with the error that undid it.
    pub async fn write<R, F>(&self, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> WorkFuture<'c, R> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<StoreResult<R>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = work(conn).await;
                let ok = result.is_ok();
                let reply: Reply = Box::new(move |committed| {
                    let outcome = match (result, committed) {
                        (Ok(value), Ok(())) => Ok(value),
                        (Ok(_), Err(e)) => Err(share(e)),
                        (Err(e), _) => Err(e),
                    };
                    // The caller may have gone away; the write stands regardless.
                    let _ = answer.send(outcome);
                });
                (ok, reply)
            })
        });
        self.jobs
            .send_timeout(job, self.admission)
            .await
            .map_err(|_| unavailable("the SQLite writer is not accepting writes"))?;
        answered
            .await
            .map_err(|_| unavailable("the SQLite writer dropped the write"))?
    }
}

async fn run(pool: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        // A batch of its own task: a panicking job fails its batch (its callers see the
        // dropped answer), not every later write.
        let _ = tokio::spawn(commit_batch(pool.clone(), jobs)).await;
    }
}

async fn commit_batch(pool: SqlitePool, jobs: Vec<Job>) {
    let mut replies = Vec::with_capacity(jobs.len());
    let committed = run_jobs(&pool, jobs, &mut replies).await;
    for reply in replies {
        reply(&committed);
    }
}

/// Runs the jobs in one transaction and commits it. A job that never ran (the batch failed
/// first) is dropped, which answers its caller with an error.
async fn run_jobs(pool: &SqlitePool, jobs: Vec<Job>, replies: &mut Vec<Reply>) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    for job in jobs {
        let mut savepoint = tx.begin().await?;
        let (ok, reply) = job(&mut savepoint).await;
        replies.push(reply);
        match ok {
            true => savepoint.commit().await?,
            false => savepoint.rollback().await?,
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The batch's failure, for each of its callers.
fn share(e: &StoreError) -> StoreError {
    match e {
        StoreError::UnknownCursor => StoreError::UnknownCursor,
        StoreError::Conflict(why) => StoreError::Conflict(why),
        StoreError::Duplicate(what) => StoreError::Duplicate(what),
        StoreError::Unavailable(e) => StoreError::Unavailable(anyhow::anyhow!("{e:#}")),
        StoreError::Other(e) => StoreError::Other(anyhow::anyhow!("{e:#}")),
    }
}

fn unavailable(why: &'static str) -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!(why))
}
