-- The latest version of every dataset, with its rows.
CREATE OR REPLACE VIEW current_dataset_versions AS
SELECT * EXCLUDE (rn)
FROM (
    SELECT *, row_number() OVER (PARTITION BY dataset ORDER BY created_at DESC) AS rn
    FROM dataset_versions
)
WHERE rn = 1;

CREATE OR REPLACE VIEW current_dataset_rows AS
SELECT r.*
FROM dataset_rows r
JOIN current_dataset_versions v USING (dataset, dataset_version);
