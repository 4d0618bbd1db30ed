\set c random(1, 1000000000)
SELECT presence.add('storm', 'storm' || :client_id || '-' || :c, 'u' || :c);
