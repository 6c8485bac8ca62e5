-- tweetlab team project, schema version 2: labels sent exactly once, labels taken back, and a
-- queue that finds the next row without reading the rows already done.
--
-- A client keeps every label in a local outbox until the server has it, and sends it with an id
-- made when the label was saved. When the reply to a send is lost (the connection dropped after
-- the commit) the client sends again; the second send finds the id and changes nothing, so a
-- label is never lost and never counted twice.

CREATE TABLE label_ops (
    annotator name NOT NULL DEFAULT current_user,
    op_id text NOT NULL CHECK (length(op_id) BETWEEN 8 AND 64),
    row_id bigint NOT NULL,
    -- NULL: the annotator took their label back.
    label smallint,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (annotator, op_id)
);
ALTER TABLE label_ops ENABLE ROW LEVEL SECURITY;
CREATE POLICY ops_own ON label_ops FOR ALL
    USING (annotator = current_user) WITH CHECK (annotator = current_user);

-- A taken-back label leaves a NULL in the history.
ALTER TABLE label_history ALTER COLUMN label DROP NOT NULL;

-- Stores (or, with l NULL, takes back) the caller's label on row r, once per op id; false when
-- the op was applied before. Runs as the caller: row level security and the label triggers
-- apply as to a plain INSERT.
CREATE FUNCTION tweetlab_label(r bigint, l smallint, op text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO label_ops (op_id, row_id, label) VALUES (op, r, l) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF l IS NULL THEN
        DELETE FROM labels WHERE row_id = r AND annotator = current_user;
    ELSE
        INSERT INTO labels (row_id, label) VALUES (r, l)
        ON CONFLICT (row_id, annotator) DO UPDATE SET label = EXCLUDED.label;
    END IF;
    RETURN true;
END
$$;

-- A label taken back: its history, and the row's final label unless a reviewer set it (the
-- row is open again).
CREATE FUNCTION tweetlab_after_unlabel() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO label_history (row_id, annotator, label, revision)
    VALUES (OLD.row_id, OLD.annotator, NULL, OLD.revision + 1);
    DELETE FROM final_labels WHERE row_id = OLD.row_id AND how <> 'reviewer';
    PERFORM tweetlab_recount(OLD.row_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER labels_after_delete AFTER DELETE ON labels
    FOR EACH ROW EXECUTE FUNCTION tweetlab_after_unlabel();

CREATE POLICY labels_delete ON labels FOR DELETE USING (annotator = current_user);

-- The grants of version 1 and what version 2 adds.
CREATE OR REPLACE FUNCTION tweetlab_grant(annotators name, reviewers name) RETURNS void
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
    EXECUTE format('GRANT INSERT (row_id, label), UPDATE (label), DELETE ON labels TO %I',
                   annotators);
    EXECUTE format('GRANT SELECT, INSERT (op_id, row_id, label) ON label_ops TO %I', annotators);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tweetlab_claim(int), tweetlab_release(), '
                   'tweetlab_progress(), tweetlab_rows_by_labels(), '
                   'tweetlab_label(bigint, smallint, text), tweetlab_changed(bigint[]) TO %I',
                   annotators);
    EXECUTE format('GRANT INSERT (row_id, label, how, decided_by), UPDATE (label, how, decided_by, '
                   'decided_at) ON final_labels TO %I', reviewers);
END
$$;
REVOKE ALL ON FUNCTION tweetlab_grant(name, name), tweetlab_label(bigint, smallint, text)
    FROM PUBLIC;


-- Each row says whether the queue is done with it (K labels, or a final label): the next row is
-- then found through a partial index of the open rows, however far the project has come. The
-- flag changes only when a row closes or opens again, so most labels leave the row alone.
ALTER TABLE rows ADD COLUMN closed boolean NOT NULL DEFAULT false;
CREATE INDEX rows_open ON rows (id) WHERE NOT closed;

CREATE FUNCTION tweetlab_recount(r bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    done boolean := (SELECT count(*) FROM labels WHERE row_id = r) >= (SELECT overlap FROM project)
                    OR EXISTS (SELECT 1 FROM final_labels WHERE row_id = r);
BEGIN
    UPDATE rows SET closed = done WHERE id = r AND closed IS DISTINCT FROM done;
END
$$;
REVOKE ALL ON FUNCTION tweetlab_recount(bigint) FROM PUBLIC;
SELECT tweetlab_recount(id) FROM rows;

-- The functions every label and claim calls are PL/pgSQL from here on: PostgreSQL parses a
-- SQL-language function it cannot inline on every call, but keeps PL/pgSQL's plans.
CREATE OR REPLACE FUNCTION tweetlab_taken(r bigint, except_annotator name) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN (SELECT count(*) FROM labels WHERE row_id = r)
         + (SELECT count(*) FROM claims c
             WHERE c.row_id = r AND c.expires_at > clock_timestamp()
               AND c.annotator IS DISTINCT FROM except_annotator);
END
$$;

CREATE OR REPLACE FUNCTION tweetlab_is_reviewer() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN pg_has_role(session_user, (SELECT reviewer_role FROM project), 'MEMBER');
END
$$;

CREATE OR REPLACE FUNCTION tweetlab_is_annotator() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN pg_has_role(session_user, (SELECT annotator_role FROM project), 'MEMBER');
END
$$;

CREATE OR REPLACE FUNCTION tweetlab_blind() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN (SELECT blind FROM project);
END
$$;

-- (ROWS 10: a caller asks for a few rows; the default guess of 1000 made the join with rows a
-- hash join over the whole table.)
CREATE OR REPLACE FUNCTION tweetlab_claim(wanted int)
RETURNS TABLE (claimed_row bigint, claim_expires timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER ROWS 10 SET search_path = public, pg_temp AS $$
DECLARE
    me name := session_user;
    k int;
    ttl interval;
    candidate bigint;
    chunk bigint[];
    after bigint;
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
    -- The open rows in order, each checked with index lookups (a plan that reads the labels
    -- table whole per call is what this avoids), locked without waiting, and counted again
    -- under the lock: what another caller committed since counts.
    -- (In chunks: a plain loop over every open row is planned as a sort of all of them.)
    -- The first pass passes over rows someone else holds now, so that a row's K labels come
    -- one after another rather than at once (they would queue on the row's lock); the second
    -- takes any row with room.
    FOR pass IN 1..2 LOOP
    after := -1;
    WHILE got < wanted LOOP
        chunk := ARRAY(SELECT r.id FROM rows r WHERE NOT r.closed AND r.id > after
                       ORDER BY r.id LIMIT 32);
        EXIT WHEN cardinality(chunk) = 0;
        after := chunk[cardinality(chunk)];
        FOREACH candidate IN ARRAY chunk LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM labels l
                                  WHERE l.row_id = candidate AND l.annotator = me)
                       OR EXISTS (SELECT 1 FROM claims c
                                  WHERE c.row_id = candidate
                                    AND (c.annotator = me
                                         OR (pass = 1 AND c.expires_at > clock_timestamp())))
                       OR tweetlab_taken(candidate, NULL) >= k;
            PERFORM 1 FROM rows r WHERE r.id = candidate FOR NO KEY UPDATE SKIP LOCKED;
            CONTINUE WHEN NOT FOUND;
            CONTINUE WHEN tweetlab_taken(candidate, NULL) >= k;
            INSERT INTO claims (row_id, annotator, expires_at)
            VALUES (candidate, me, clock_timestamp() + ttl)
            RETURNING row_id, expires_at INTO claimed_row, claim_expires;
            got := got + 1;
            RETURN NEXT;
            EXIT WHEN got >= wanted;
        END LOOP;
    END LOOP;
    END LOOP;
END
$$;

-- Live views hear of changes from the clients that made them, in a statement of its own after
-- the change committed: a NOTIFY inside a label's transaction holds PostgreSQL's notification
-- lock through that transaction's WAL flush, so committing labels went one at a time (label
-- writes took 18 ms at the median with twenty annotators). This commit need not wait for the
-- flush: a notification is not kept over a crash anyway, and listeners read the whole state
-- again when they reconnect.
CREATE FUNCTION tweetlab_changed(changed bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_notify('tweetlab', json_build_object('rows', changed[1:100])::text);
END
$$;
REVOKE ALL ON FUNCTION tweetlab_changed(bigint[]) FROM PUBLIC;

-- The after-label trigger of version 1, keeping the row's state (no notification: see
-- tweetlab_changed).
CREATE OR REPLACE FUNCTION tweetlab_after_label() RETURNS trigger
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
    -- Labels of one row decide its final label one at a time: under the lock, the count sees
    -- every label committed before, so the last of K concurrent labels always sees all K.
    -- (NO KEY UPDATE: the label's own foreign key holds KEY SHARE on the row, which this lock
    -- lets be, so K labellers queue here rather than deadlock.)
    PERFORM 1 FROM rows WHERE id = NEW.row_id FOR NO KEY UPDATE;
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
    PERFORM tweetlab_recount(NEW.row_id);
    RETURN NULL;
END
$$;

-- A final label set or taken away opens or closes its row for the queue.
CREATE OR REPLACE FUNCTION tweetlab_after_final() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM tweetlab_recount(OLD.row_id);
    ELSE
        PERFORM tweetlab_recount(NEW.row_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER final_after_delete AFTER DELETE ON final_labels
    FOR EACH ROW EXECUTE FUNCTION tweetlab_after_final();

-- Before a label is stored (version 1's checks): a row is locked only for a label without a
-- live claim, whose room must be counted under the lock; a claimed row's slot is reserved.
CREATE OR REPLACE FUNCTION tweetlab_before_label() RETURNS trigger
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
    IF EXISTS (SELECT 1 FROM labels WHERE row_id = NEW.row_id AND annotator = NEW.annotator) THEN
        RETURN NEW; -- the ON CONFLICT update of the annotator's own label follows
    END IF;
    IF EXISTS (SELECT 1 FROM final_labels WHERE row_id = NEW.row_id) THEN
        RAISE EXCEPTION 'row % already has its final label', NEW.row_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM claims WHERE row_id = NEW.row_id AND annotator = NEW.annotator
                   AND expires_at > clock_timestamp()) THEN
        PERFORM 1 FROM rows WHERE id = NEW.row_id FOR NO KEY UPDATE;
        IF tweetlab_taken(NEW.row_id, NEW.annotator) >= k THEN
            RAISE EXCEPTION 'row % already has % labels and claims', NEW.row_id, k
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.revision := 1;
    NEW.labelled_at := now();
    RETURN NEW;
END
$$;

-- A project made under version 1 gets the new grants now.
DO $$
DECLARE
    p project%ROWTYPE;
BEGIN
    SELECT * INTO p FROM project;
    IF FOUND THEN
        PERFORM tweetlab_grant(p.annotator_role, p.reviewer_role);
    END IF;
END
$$;
