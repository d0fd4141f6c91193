DROP TABLE service_orders;
DROP TABLE services;
