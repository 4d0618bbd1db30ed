\set r random(1, 1000)
\set c random(1, 1000000000)
SELECT presence.add('storm' || :r, 'storm' || :client_id || '-' || :c, 'u' || :c);
