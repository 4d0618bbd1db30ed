"""The page: /?room=lobby&name=ann (no name: an anonymous visitor)."""

from django.urls import path

from chat import views

urlpatterns = [path("", views.index)]
