DELETE FROM counters WHERE name IN ('change_seq', 'changes_pruned_through');
DROP TABLE changes;
