-- Benchmarks/compare: the original design's AuthorizeCall, one statement per call (pgbench script).
-- :agent is drawn per transaction; :country is passed with -D country=US.
\set agent random(0, 9999)
UPDATE numbers
   SET count = CASE WHEN day = current_date THEN count + 1 ELSE 1 END,
       day = current_date
 WHERE id = (SELECT id FROM numbers
              WHERE agent = :agent
                AND (day <> current_date OR count < daily_limit)
                AND :country = ANY (countries)
              ORDER BY id
              LIMIT 1
                FOR UPDATE SKIP LOCKED)
RETURNING id, count;
