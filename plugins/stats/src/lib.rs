ward_guest::plugin!(|_p| {});
