"""The only event-loop code of the data path: TAP devices and the driver."""
