-- A view over the day's file, so a corrected file is what the next test run sees.
select
    order_id,
    customer_id,
    cast(amount as decimal(10, 2)) as amount,
    cast(ordered_at as date) as ordered_at
from read_csv('{{ var("orders_csv", "../data/orders.csv") }}', header = true, all_varchar = true)
