-- tweetlab team project, schema version 1. Applied once, in one transaction, by the owner.
-- Access is the database's to enforce: annotators and reviewers are roles, row level security
-- keeps each annotator to their own labels, and the queue and the final labels are written only
-- through the functions and triggers below (SECURITY DEFINER: they run as the owner, and read
-- the caller from session_user).

CREATE TABLE project (
    id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    name text NOT NULL,
    -- The label set as tweetlab's JSON (class names and the file's values for each).
    label_set jsonb NOT NULL,
    class_count smallint NOT NULL CHECK (class_count BETWEEN 2 AND 20),
    overlap smallint NOT NULL CHECK (overlap BETWEEN 1 AND 20),
    blind boolean NOT NULL,
    claim_ttl interval NOT NULL CHECK (claim_ttl > interval '0'),
    source text NOT NULL,
    owner name NOT NULL DEFAULT current_user,
    annotator_role name NOT NULL,
    reviewer_role name NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rows (
    id bigint PRIMARY KEY,
    source_id text NOT NULL,
    keyword text NOT NULL,
    location text NOT NULL,
    text text NOT NULL,
    line bigint NOT NULL,
    imported_label smallint
);

CREATE TABLE annotators (
    name name PRIMARY KEY,
    reviewer boolean NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE labels (
    row_id bigint NOT NULL REFERENCES rows (id),
    annotator name NOT NULL DEFAULT current_user,
    label smallint NOT NULL,
    labelled_at timestamptz NOT NULL DEFAULT now(),
    revision int NOT NULL DEFAULT 1,
    PRIMARY KEY (row_id, annotator)
);
CREATE INDEX labels_by_annotator ON labels (annotator);

CREATE TABLE label_history (
    id bigserial PRIMARY KEY,
    row_id bigint NOT NULL,
    annotator name NOT NULL,
    label smallint NOT NULL,
    revision int NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE claims (
    row_id bigint NOT NULL REFERENCES rows (id),
    annotator name NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (row_id, annotator)
);
CREATE INDEX claims_by_annotator ON claims (annotator);

CREATE TABLE final_labels (
    row_id bigint PRIMARY KEY REFERENCES rows (id),
    label smallint NOT NULL,
    how text NOT NULL CHECK (how IN ('agreement', 'majority', 'reviewer')),
    decided_by name NOT NULL DEFAULT current_user,
    decided_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runs (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    model text NOT NULL,
    settings jsonb NOT NULL,
    metrics jsonb
);

CREATE FUNCTION tweetlab_is_reviewer() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT pg_has_role(session_user, (SELECT reviewer_role FROM project), 'MEMBER')
$$;

CREATE FUNCTION tweetlab_is_annotator() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT pg_has_role(session_user, (SELECT annotator_role FROM project), 'MEMBER')
$$;

CREATE FUNCTION tweetlab_blind() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT blind FROM project
$$;

-- Labels and live claims on a row: what the overlap K bounds.
CREATE FUNCTION tweetlab_taken(r bigint, except_annotator name) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT (SELECT count(*) FROM labels l WHERE l.row_id = r)
         + (SELECT count(*) FROM claims c
             WHERE c.row_id = r AND c.expires_at > clock_timestamp()
               AND c.annotator IS DISTINCT FROM except_annotator)
$$;

-- An annotator's next rows: their live claims first (renewed: the heartbeat), then new claims
-- on rows with fewer than K labels and live claims. Each candidate row is locked (SKIP LOCKED:
-- two callers never wait on one another) and counted again under the lock, so what another
-- caller committed since the search counts: no row is ever handed to more than K annotators.
CREATE FUNCTION tweetlab_claim(wanted int)
RETURNS TABLE (claimed_row bigint, claim_expires timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me name := session_user;
    k int;
    ttl interval;
    candidate bigint;
    passed bigint[] := '{}';
    got int := 0;
BEGIN
    IF NOT tweetlab_is_annotator() THEN
        RAISE EXCEPTION 'role % is not an annotator of this project', me
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT overlap, claim_ttl INTO k, ttl FROM project;
    DELETE FROM claims c WHERE c.annotator = me AND c.expires_at <= clock_timestamp();
    FOR claimed_row, claim_expires IN
        UPDATE claims c SET expires_at = clock_timestamp() + ttl
        WHERE c.annotator = me
        RETURNING c.row_id, c.expires_at
    LOOP
        got := got + 1;
        RETURN NEXT;
    END LOOP;
    WHILE got < wanted LOOP
        SELECT r.id INTO candidate FROM rows r
        WHERE r.id <> ALL (passed)
          AND NOT EXISTS (SELECT 1 FROM final_labels f WHERE f.row_id = r.id)
          AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.row_id = r.id AND l.annotator = me)
          AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.row_id = r.id AND c.annotator = me)
          AND tweetlab_taken(r.id, NULL) < k
        ORDER BY r.id
        LIMIT 1
        FOR UPDATE OF r SKIP LOCKED;
        EXIT WHEN candidate IS NULL;
        IF tweetlab_taken(candidate, NULL) < k THEN
            INSERT INTO claims (row_id, annotator, expires_at)
            VALUES (candidate, me, clock_timestamp() + ttl)
            RETURNING row_id, expires_at INTO claimed_row, claim_expires;
            got := got + 1;
            RETURN NEXT;
        ELSE
            passed := passed || candidate;
        END IF;
        candidate := NULL;
    END LOOP;
END
$$;

-- Gives back the caller's claims (closing the app, or leaving a row unlabelled).
CREATE FUNCTION tweetlab_release() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM claims WHERE annotator = session_user RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- Refuses a label that is no class of the project (annotators' labels and final labels alike).
CREATE FUNCTION tweetlab_check_class(label smallint) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    classes int := (SELECT class_count FROM project);
BEGIN
    IF label < 0 OR label >= classes THEN
        RAISE EXCEPTION 'label % is not a class of this project (0 to %)', label, classes - 1
            USING ERRCODE = 'check_violation';
    END IF;
END
$$;

-- Before a label is stored: a class of the project; a new label only on a row the annotator
-- holds a live claim on, or, without one (a claim that expired while offline), on a row that
-- still has room; never on a row already settled.
CREATE FUNCTION tweetlab_before_label() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k int := (SELECT overlap FROM project);
BEGIN
    PERFORM tweetlab_check_class(NEW.label);
    IF TG_OP = 'UPDATE' THEN
        NEW.revision := OLD.revision + 1;
        NEW.labelled_at := now();
        RETURN NEW;
    END IF;
    PERFORM 1 FROM rows WHERE id = NEW.row_id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM labels WHERE row_id = NEW.row_id AND annotator = NEW.annotator) THEN
        RETURN NEW; -- the ON CONFLICT update of the annotator's own label follows
    END IF;
    IF EXISTS (SELECT 1 FROM final_labels WHERE row_id = NEW.row_id) THEN
        RAISE EXCEPTION 'row % already has its final label', NEW.row_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM claims WHERE row_id = NEW.row_id AND annotator = NEW.annotator
                   AND expires_at > clock_timestamp())
       AND tweetlab_taken(NEW.row_id, NEW.annotator) >= k THEN
        RAISE EXCEPTION 'row % already has % labels and claims', NEW.row_id, k
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.revision := 1;
    NEW.labelled_at := now();
    RETURN NEW;
END
$$;

-- After a label is stored: its history, the claim it used, the row's final label when K labels
-- agree (or, for K >= 3, a strict majority does), and a small notification for live views.
CREATE FUNCTION tweetlab_after_label() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k int;
    n int;
    top_label smallint;
    top_votes int;
BEGIN
    INSERT INTO label_history (row_id, annotator, label, revision)
    VALUES (NEW.row_id, NEW.annotator, NEW.label, NEW.revision);
    DELETE FROM claims WHERE row_id = NEW.row_id AND annotator = NEW.annotator;
    SELECT overlap INTO k FROM project;
    SELECT count(*) INTO n FROM labels WHERE row_id = NEW.row_id;
    IF n >= k AND NOT EXISTS (SELECT 1 FROM final_labels
                              WHERE row_id = NEW.row_id AND how = 'reviewer') THEN
        SELECT label, count(*) INTO top_label, top_votes FROM labels
        WHERE row_id = NEW.row_id GROUP BY label ORDER BY count(*) DESC, label LIMIT 1;
        IF top_votes = n OR (k >= 3 AND top_votes * 2 > n) THEN
            INSERT INTO final_labels (row_id, label, how, decided_by)
            VALUES (NEW.row_id, top_label,
                    CASE WHEN top_votes = n THEN 'agreement' ELSE 'majority' END, NEW.annotator)
            ON CONFLICT (row_id) DO UPDATE
                SET label = EXCLUDED.label, how = EXCLUDED.how,
                    decided_by = EXCLUDED.decided_by, decided_at = now();
        ELSE
            DELETE FROM final_labels WHERE row_id = NEW.row_id;
        END IF;
    END IF;
    PERFORM pg_notify('tweetlab', json_build_object('row', NEW.row_id, 'labels', n)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER labels_before BEFORE INSERT OR UPDATE ON labels
    FOR EACH ROW EXECUTE FUNCTION tweetlab_before_label();
CREATE TRIGGER labels_after AFTER INSERT OR UPDATE ON labels
    FOR EACH ROW EXECUTE FUNCTION tweetlab_after_label();

CREATE FUNCTION tweetlab_before_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tweetlab_check_class(NEW.label);
    RETURN NEW;
END
$$;
CREATE TRIGGER final_before BEFORE INSERT OR UPDATE ON final_labels
    FOR EACH ROW EXECUTE FUNCTION tweetlab_before_final();

CREATE FUNCTION tweetlab_after_final() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('tweetlab', json_build_object('row', NEW.row_id, 'final', NEW.label)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER final_after AFTER INSERT OR UPDATE ON final_labels
    FOR EACH ROW EXECUTE FUNCTION tweetlab_after_final();

-- Progress without label values, for every member: labels and live claims per annotator, and
-- how many rows have 0, 1, ... labels.
CREATE FUNCTION tweetlab_progress()
RETURNS TABLE (annotator name, labelled bigint, claimed bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.name,
           (SELECT count(*) FROM labels l WHERE l.annotator = a.name),
           (SELECT count(*) FROM claims c
             WHERE c.annotator = a.name AND c.expires_at > clock_timestamp())
    FROM annotators a ORDER BY a.name
$$;

CREATE FUNCTION tweetlab_rows_by_labels()
RETURNS TABLE (label_count bigint, row_count bigint, settled bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT n, count(*), count(f.row_id)
    FROM (SELECT r.id, (SELECT count(*) FROM labels l WHERE l.row_id = r.id) AS n
          FROM rows r) counted
    LEFT JOIN final_labels f ON f.row_id = counted.id
    GROUP BY n ORDER BY n
$$;

-- Who may read a label (and its history): its annotator; anyone in open mode; reviewers; and
-- anyone once the row is final.
CREATE FUNCTION tweetlab_may_read(r bigint, by_annotator name) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT by_annotator = current_user
        OR NOT tweetlab_blind()
        OR tweetlab_is_reviewer()
        OR EXISTS (SELECT 1 FROM final_labels f WHERE f.row_id = r)
$$;

ALTER TABLE labels ENABLE ROW LEVEL SECURITY;
CREATE POLICY labels_read ON labels FOR SELECT USING (tweetlab_may_read(row_id, annotator));
CREATE POLICY labels_insert ON labels FOR INSERT WITH CHECK (annotator = current_user);
CREATE POLICY labels_update ON labels FOR UPDATE
    USING (annotator = current_user) WITH CHECK (annotator = current_user);

ALTER TABLE label_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY history_read ON label_history FOR SELECT
    USING (tweetlab_may_read(row_id, annotator));

ALTER TABLE claims ENABLE ROW LEVEL SECURITY;
CREATE POLICY claims_read ON claims FOR SELECT USING (annotator = current_user);

ALTER TABLE final_labels ENABLE ROW LEVEL SECURITY;
CREATE POLICY final_read ON final_labels FOR SELECT USING (true);
CREATE POLICY final_settle ON final_labels FOR INSERT
    WITH CHECK (how = 'reviewer' AND decided_by = current_user);
CREATE POLICY final_resettle ON final_labels FOR UPDATE
    USING (true) WITH CHECK (how = 'reviewer' AND decided_by = current_user);

REVOKE ALL ON FUNCTION tweetlab_claim(int), tweetlab_release(), tweetlab_progress(),
    tweetlab_rows_by_labels(), tweetlab_taken(bigint, name) FROM PUBLIC;

-- Creates the project's two group roles (if missing) and grants them what they may do.
CREATE FUNCTION tweetlab_grant(annotators name, reviewers name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = annotators) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', annotators);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = reviewers) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE %I', reviewers, annotators);
    END IF;
    EXECUTE format('GRANT SELECT ON tweetlab_schema, project, rows, annotators, labels, '
                   'label_history, claims, final_labels, runs TO %I', annotators);
    EXECUTE format('GRANT INSERT (row_id, label), UPDATE (label) ON labels TO %I', annotators);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tweetlab_claim(int), tweetlab_release(), '
                   'tweetlab_progress(), tweetlab_rows_by_labels() TO %I', annotators);
    EXECUTE format('GRANT INSERT (row_id, label, how, decided_by), UPDATE (label, how, decided_by, '
                   'decided_at) ON final_labels TO %I', reviewers);
END
$$;

-- Makes a login role for an annotator from a password verifier made by the client (the
-- password itself never reaches the server), in the project's group roles.
CREATE FUNCTION tweetlab_add_annotator(who name, verifier text, reviewer boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p project%ROWTYPE;
BEGIN
    SELECT * INTO p FROM project;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = who) THEN
        EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', who, verifier);
    ELSE
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', who, verifier);
    END IF;
    EXECUTE format('GRANT %I TO %I', p.annotator_role, who);
    IF reviewer THEN
        EXECUTE format('GRANT %I TO %I', p.reviewer_role, who);
    END IF;
    INSERT INTO annotators (name, reviewer) VALUES (who, reviewer)
    ON CONFLICT (name) DO UPDATE SET reviewer = EXCLUDED.reviewer;
END
$$;
REVOKE ALL ON FUNCTION tweetlab_grant(name, name), tweetlab_add_annotator(name, text, boolean)
    FROM PUBLIC;
