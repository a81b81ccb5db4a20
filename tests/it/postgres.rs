//! CI must run the PostgreSQL half of the suite, not skip it.

#[tokio::test]
async fn postgres_answers_when_ci_asks_for_it() {
    if std::env::var("CSATWATCH_REQUIRE_POSTGRES").is_ok() {
        let url = std::env::var("TEST_DATABASE_URL")
            .expect("CSATWATCH_REQUIRE_POSTGRES is set, so TEST_DATABASE_URL must be too");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at TEST_DATABASE_URL does not answer: {e}"));
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
}
